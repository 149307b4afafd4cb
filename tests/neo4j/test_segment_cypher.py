"""The segment filter compiler (store/neo4j_segments.py), without a server: whatever a
filter holds, its values reach Neo4j as parameters, never as statement text. What the
statements select is the contract suite's to check (tests/contract/test_segments.py runs
it against a server, including a property test against the brute-force evaluator)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from idgraph.domain.consent import DEFAULT_PURPOSES
from idgraph.domain.segment import parse_filter
from idgraph.errors import FilterError
from idgraph.store import cypher
from idgraph.store.neo4j_segments import compile_segment
from idgraph.store.port import SegmentQuery

NAMES = [p.name for p in DEFAULT_PURPOSES]
NOW = datetime(2026, 3, 1, tzinfo=UTC)
MARK = "zq"  # in no fragment: wherever a statement holds it, a value leaked into the text
# Parameters the tails take (the rest are the compiler's).
TAIL_PARAMETERS = {"limit", "afterAt", "afterId", "pageSize"}
TAILS = [*cypher.SEGMENT_PAGE.values(), cypher.SEGMENT_COUNT, cypher.SEGMENT_BATCH]

marked = st.text(max_size=8).map(lambda text: MARK + text)
scalars = st.one_of(marked, st.integers(-5, 5), st.floats(-5, 5), st.booleans())
numbers = st.one_of(st.integers(-5, 5), st.floats(-5, 5))
times = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T10:00:00.25+02:00"])
ops = st.sampled_from(["gt", "gte", "lt", "lte"])


def trait(ops: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda name, body: {"trait": {"name": name, **body}}, marked, ops)


leaves = st.one_of(
    trait(st.builds(lambda v: {"eq": v}, scalars)),
    trait(st.builds(lambda v: {"in": v}, st.lists(scalars, min_size=1, max_size=3))),
    trait(st.builds(lambda v: {"exists": v}, st.booleans())),
    trait(st.dictionaries(ops, st.one_of(numbers, times), min_size=1, max_size=2)),
    st.builds(lambda k, p: {"identifier": {"kind": k, "prefix": p}}, marked, marked),
    st.builds(
        lambda t, c, n: {"interactions": {"type": t, "channel": c, "atLeast": n}},
        marked,
        marked,
        st.integers(0, 3),
    ),
    st.builds(
        lambda p, s: {"consent": {"purpose": p, "status": s}},
        st.sampled_from(NAMES),
        st.sampled_from(["GRANTED", "DENIED"]),
    ),
    st.builds(lambda s: {"source": s}, marked),
    st.builds(lambda op, n: {"size": {op: n}}, ops, st.integers(0, 9)),
    st.builds(lambda op, t: {"createdAt": {op: t}}, ops, times),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda parts: {"all": parts}, st.lists(inner, max_size=3)),
        st.builds(lambda parts: {"any": parts}, st.lists(inner, max_size=3)),
        st.builds(lambda part: {"not": part}, inner),
    ),
    max_leaves=8,
)


@given(raw=filters, visible_to=st.sampled_from([None, *DEFAULT_PURPOSES]))
def test_a_filters_values_are_parameters_never_statement_text(
    raw: dict[str, Any], visible_to: Any
) -> None:
    try:
        parsed = parse_filter(raw, NAMES)
    except FilterError:
        assume(False)
    compiled = compile_segment(SegmentQuery(parsed, DEFAULT_PURPOSES, NOW, visible_to))
    for tail in TAILS:
        statement = compiled.statement(tail, after_id=tail is cypher.SEGMENT_BATCH)
        assert MARK not in statement
        assert "'" not in statement
        assert '"' not in statement
        used = set(re.findall(r"\$(\w+)", statement))
        assert used <= compiled.params.keys() | TAIL_PARAMETERS
    assert all(not name.startswith("_") for name in compiled.params)


LIMA = {"trait": {"name": "city", "eq": "Lima"}}
BUYERS = {"interactions": {"type": "purchase", "atLeast": 2}}
MARKETING = {"consent": {"purpose": "marketing", "status": "GRANTED"}}


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        ({"all": [BUYERS, MARKETING, LIMA]}, "trait"),
        ({"all": [BUYERS, {"all": [MARKETING]}]}, "consent"),
        ({"identifier": {"kind": "crm_id", "prefix": "CRM-"}}, "identifier"),
        ({"any": [LIMA]}, "trait"),
        # Not every member meets these, so no index can find them all.
        ({"any": [LIMA, BUYERS]}, None),
        ({"not": LIMA}, None),
        ({"trait": {"name": "age", "eq": 3}}, None),
        ({"consent": {"purpose": "support", "status": "GRANTED"}}, None),
        ({"identifier": {"kind": "crm_id"}}, None),
    ],
)
def test_a_statement_starts_where_an_index_finds_every_member(
    raw: dict[str, Any], start: str | None
) -> None:
    compiled = compile_segment(SegmentQuery(parse_filter(raw, NAMES), DEFAULT_PURPOSES, NOW))
    expected = cypher.SEGMENT_START_ALL if start is None else cypher.SEGMENT_START[start]
    assert re.sub(r"\$p\d+_", "$_", compiled.start) == expected.strip()
