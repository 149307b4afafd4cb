"""The GraphQL schema, with its limits and caches. ``python -m idgraph.api.schema`` prints
it in SDL; ``schema.graphql`` at the repository root is that output (a test checks it)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from idgraph.api.audit import FlushAudit
from idgraph.api.errors import ErrorPhases
from idgraph.api.mutations import Mutation
from idgraph.api.queries import Query
from idgraph.api.types import Account, Customer, Device, Identifier, Interaction
from idgraph.config import ApiSettings

CACHE_SIZE = 512


class IdgraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry would log every error with its message, which may quote personal
        data; :func:`idgraph.api.errors.format_error` logs the unexpected ones instead."""


def build_schema(settings: ApiSettings) -> strawberry.Schema:
    # The limit rules are built once: ValidationCache keys on the rule classes, and
    # QueryDepthLimiter / MaxAliasesLimiter make a new class per instance.
    limits: list[Any] = [
        *QueryDepthLimiter(max_depth=settings.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    return IdgraphSchema(
        query=Query,
        mutation=Mutation,
        types=[Customer, Identifier, Device, Account, Interaction],
        extensions=[
            ErrorPhases,
            FlushAudit,
            lambda: AddValidationRules(limits),
            lambda: ParserCache(maxsize=CACHE_SIZE),
            lambda: ValidationCache(maxsize=CACHE_SIZE),
        ],
    )


def sdl() -> str:
    """The schema in SDL, as ``schema.graphql`` holds it."""
    return build_schema(ApiSettings()).as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
