"""The phases around a GraphQL operation (idgraph.api.phases): the cache of parsed and
validated documents, and the runner that does the phases."""

from __future__ import annotations

import pytest
from graphql import GraphQLSyntaxError, specified_rules

from idgraph.api.phases import Documents
from idgraph.api.schema import build_schema
from idgraph.config import ApiSettings

SCHEMA = build_schema(ApiSettings())._schema
RULES = tuple(specified_rules)


def test_a_repeated_query_is_parsed_and_validated_once() -> None:
    documents = Documents(size=4, max_tokens=100)
    first = documents.prepare("{ __typename }")
    errors = first.validate(SCHEMA, RULES)
    again = documents.prepare("{ __typename }")
    assert again is first
    assert errors == []
    assert again.validate(SCHEMA, tuple(specified_rules)) is errors


def test_validation_errors_are_kept_with_their_document() -> None:
    documents = Documents(size=4, max_tokens=100)
    errors = documents.prepare("{ noSuchField }").validate(SCHEMA, RULES)
    assert [e.message for e in errors] == ["Cannot query field 'noSuchField' on type 'Query'."]
    assert documents.prepare("{ noSuchField }").validate(SCHEMA, RULES) is errors


def test_other_rules_validate_again() -> None:
    prepared = Documents(size=4, max_tokens=100).prepare("{ noSuchField }")
    assert prepared.validate(SCHEMA, RULES)
    assert prepared.validate(SCHEMA, ()) == []


def test_the_cache_keeps_the_most_recently_used() -> None:
    documents = Documents(size=2, max_tokens=100)
    a = documents.prepare("{ a: __typename }")
    b = documents.prepare("{ b: __typename }")
    assert documents.prepare("{ a: __typename }") is a  # a is now the most recent
    documents.prepare("{ c: __typename }")  # evicts b
    assert documents.prepare("{ a: __typename }") is a
    assert documents.prepare("{ b: __typename }") is not b


def test_syntax_errors_and_token_limits_raise_and_are_not_kept() -> None:
    documents = Documents(size=4, max_tokens=5)
    with pytest.raises(GraphQLSyntaxError, match="Syntax Error"):
        documents.prepare("{ a b c d e f g }")
    with pytest.raises(GraphQLSyntaxError):
        documents.prepare("{")
    assert documents.prepare("{ a }").document.definitions


def test_an_operation_run_synchronously_is_refused_not_run_without_its_phases() -> None:
    """Strawberry's ``execute_sync`` would skip the timeout and the audit hand-over."""
    result = build_schema(ApiSettings()).execute_sync("{ __typename }")
    assert result.data is None
    assert [e.message for e in result.errors or ()] == [
        "idgraph's GraphQL operations run asynchronously (Schema.execute)"
    ]
