"""Requests for fuzzing the API, shared by ``tests/api/test_fuzz.py`` and
``bench/fuzz_api.py``: valid queries and mutations generated from the real schema
(hypothesis-graphql), and bodies that are not valid GraphQL requests at all."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from typing import Any

import graphql
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries

from idgraph.api.schema import build_schema
from idgraph.config import ApiSettings

SCHEMA = build_schema(ApiSettings())._schema
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**31), 2**31 - 1), st.text(max_size=20)
)


def _value(value: Any) -> graphql.ValueNode:
    """A GraphQL literal for a JSON-like value (the ``JSON`` scalar takes any)."""
    if isinstance(value, dict):
        return nodes.Object(
            [
                graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_value(v))
                for k, v in value.items()
            ]
        )
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, str):
        return nodes.String(value)
    return nodes.Null


JSON_OBJECTS = st.dictionaries(NAMES, SCALARS, max_size=4).map(_value)
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def operations(offsets: bool = True) -> st.SearchStrategy[str]:
    """Queries and mutations. Strings are valid UTF-8 without NUL (a lone surrogate cannot
    reach the API: the JSON body or the GraphQL parser refuses it). With ``offsets``,
    DateTime arguments carry any UTC offset (extreme ones near year 1 or 9999 overflow in
    event parsing, being fixed in ``domain/events.py``); without, UTC only."""
    datetimes = st.datetimes(timezones=OFFSETS if offsets else st.just(UTC))
    scalars = {
        "DateTime": datetimes.map(lambda d: nodes.String(d.isoformat())),
        "JSON": JSON_OBJECTS,
        "CustomerFilter": JSON_OBJECTS,
    }
    return st.one_of(
        queries(SCHEMA, custom_scalars=scalars, allow_x00=False),
        mutations(SCHEMA, custom_scalars=scalars, allow_x00=False),
    )


JSON_VALUES = st.recursive(
    SCALARS | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
RESOLVE = (
    "query($id: IdentifierInput!, $n: Int) { resolve(identifier: $id) { id "
    "interactions(first: $n) { totalCount } } }"
)
MALFORMED = st.one_of(
    st.binary(max_size=64),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"query": st.just(RESOLVE)}, optional={"variables": JSON_VALUES}).map(
        lambda v: json.dumps(v).encode()
    ),
    st.fixed_dictionaries(
        {"query": st.sampled_from(["{ __typename }", "query A { __typename }"]) | st.text()},
        optional={"operationName": JSON_VALUES, "extensions": JSON_VALUES},
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
)
REQUESTS = st.one_of(
    operations().map(lambda q: json.dumps({"query": q}).encode()),
    MALFORMED,
)


def problems(status: int, body: bytes) -> list[str]:
    """What is wrong with a response: a 5xx, a body that is not JSON, an INTERNAL code,
    or a TIMEOUT (on a store the size of the demo, a request that runs to the time limit
    is stuck waiting, not busy)."""
    found = [f"HTTP {status}"] if status >= 500 else []
    try:
        decoded = json.loads(body)
    except ValueError:
        return [*found, "not JSON"]
    errors = decoded.get("errors") or [] if isinstance(decoded, dict) else []
    codes = [e.get("extensions", {}).get("code") for e in errors]
    return found + [code for code in codes if code in ("INTERNAL", "TIMEOUT")]
