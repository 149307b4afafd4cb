"""The filter language: what the parser accepts, what it refuses and where it says the
problem is; and the evaluator's meaning of each condition on plain summaries."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.domain.consent import DEFAULT_PURPOSES, evaluate
from idgraph.domain.segment import (
    MAX_DEPTH,
    MAX_NODES,
    All,
    ConsentCondition,
    ConsentState,
    CustomerSummary,
    InteractionFact,
    InteractionsCondition,
    Not,
    TraitCondition,
    TraitOp,
    matches,
    parse_filter,
)
from idgraph.errors import FilterError, InvalidInput

PURPOSES = [p.name for p in DEFAULT_PURPOSES]


def parse(raw: object) -> Any:
    return parse_filter(raw, PURPOSES)


def refusal(raw: object) -> str:
    with pytest.raises(FilterError) as caught:
        parse(raw)
    return str(caught.value)


def test_the_issue_example_parses() -> None:
    parsed = parse(
        {
            "all": [
                {"trait": {"name": "city", "eq": "Lima"}},
                {"interactions": {"type": "purchase", "atLeast": 2}},
                {"consent": {"purpose": "marketing", "status": "GRANTED"}},
            ]
        }
    )
    assert parsed == All(
        (
            TraitCondition("city", TraitOp.EQ, "Lima"),
            InteractionsCondition(type="purchase", at_least=2),
            ConsentCondition("marketing", ConsentState.GRANTED),
        )
    )


def test_several_operators_of_one_condition_are_all_of_them() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    parsed = parse({"trait": {"name": "joined", "gte": "2026-01-01T02:00:00+02:00", "lt": 5}})
    assert parsed == All(
        (
            TraitCondition("joined", TraitOp.GTE, since),
            TraitCondition("joined", TraitOp.LT, 5),
        )
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"all": [{"size": {"gte": 1}}, {"source": "x"}, {"interactions": {"atLeast": -1}}]},
            "filter.all[2].interactions.atLeast: expected a non-negative integer",
        ),
        (
            {"interactions": {"atLeast": True}},
            "filter.interactions.atLeast: expected a non-negative integer",
        ),
        ({"trait": {"name": "city", "like": "L%"}}, "filter.trait.like: unknown key"),
        ({"trait": {"name": "city"}}, "filter.trait: expected one of: eq, exists, gt"),
        ({"trait": {"eq": "Lima"}}, "filter.trait.name: missing"),
        ({"trait": {"name": "age", "gt": "soon"}}, "filter.trait.gt: expected an RFC 3339"),
        ({"trait": {"name": "age", "gt": [1]}}, "filter.trait.gt: expected a number or an RFC"),
        ({"trait": {"name": "age", "in": []}}, "filter.trait.in: expected a list of 1-100"),
        ({"trait": {"name": "a", "in": [1, {}]}}, "filter.trait.in[1]: expected a string, a num"),
        ({"trait": {"name": "a", "exists": 1}}, "filter.trait.exists: expected true or false"),
        ({"consent": {"purpose": "spam", "status": "GRANTED"}}, "filter.consent.purpose: unknown"),
        ({"consent": {"purpose": "marketing", "status": "YES"}}, "filter.consent.status: expected"),
        ({"identifier": {"kind": "email", "prefix": "al"}}, "filter.identifier.prefix: not allo"),
        ({"createdAt": {"after": "2026-01-01T00:00:00Z"}}, "filter.createdAt.after: unknown key"),
        ({"createdAt": {"gte": "2026-01-01"}}, "filter.createdAt.gte: expected an RFC 3339"),
        ({"size": {"gte": 1.5}}, "filter.size.gte: expected a non-negative integer"),
        ({"source": ""}, "filter.source: expected a string of 1-256 characters"),
        ({"source": "a\x00b"}, "filter.source: contains a control character"),
        ({"not": {"nope": 1}}, "filter.not.nope: unknown condition"),
        ({"all": {"source": "x"}}, "filter.all: expected a list of conditions"),
        ({"source": "a", "size": {"gte": 1}}, "filter: expected an object with one key"),
        ([], "filter: expected an object with one key"),
        (None, "filter: expected an object with one key"),
    ],
)
def test_a_refusal_names_the_path_inside_the_filter(raw: object, message: str) -> None:
    assert refusal(raw).startswith(message)


def test_refusals_are_invalid_input_and_never_quote_values() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse({"trait": {"name": "email", "eq": {"secret": "alice@example.com"}}})
    assert "alice" not in str(caught.value)


def test_a_huge_filter_is_refused_before_it_is_read() -> None:
    huge = {"any": [{"source": "x"}] * 100_000}
    assert refusal(huge) == f"filter.any: a filter holds at most {MAX_NODES} conditions"
    wide = {"all": [{"all": [{"source": "x"}] * 50}] * 5}
    assert "at most" in refusal(wide)


def test_a_deep_filter_is_refused() -> None:
    deep: dict[str, Any] = {"source": "x"}
    for _ in range(1_000):
        deep = {"not": deep}
    assert "nest at most" in refusal(deep)
    ok: dict[str, Any] = {"source": "x"}
    for _ in range(MAX_DEPTH - 1):
        ok = {"not": ok}
    parse(ok)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_any_json_is_parsed_or_refused_with_a_filter_error(raw: object) -> None:
    with contextlib.suppress(FilterError):
        parse(raw)


# ---- the evaluator -------------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def summary(**traits: Any) -> CustomerSummary:
    return CustomerSummary(
        id="cus_1",
        created_at=NOW,
        updated_at=NOW,
        size=1,
        sources=frozenset({"web"}),
        keys=frozenset({"email:a@x.com"}),
        traits=traits,
        interactions=(InteractionFact("purchase", "web", NOW),),
        consent={p.name: evaluate([], p, NOW) for p in DEFAULT_PURPOSES},
    )


def test_a_condition_on_a_missing_trait_is_false_and_its_not_true() -> None:
    eq = parse({"trait": {"name": "city", "eq": "Lima"}})
    assert not matches(eq, summary())
    assert matches(Not(eq), summary())
    assert matches(parse({"trait": {"name": "city", "exists": False}}), summary())


def test_consent_without_a_decision_is_the_purpose_default() -> None:
    assert matches(parse({"consent": {"purpose": "support", "status": "GRANTED"}}), summary())
    assert matches(parse({"consent": {"purpose": "marketing", "status": "denied"}}), summary())
