"""Bounded work per request: cost, fragments, repeats, tokens, timeout, response size,
and the ``[api]`` settings that tune them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from graphql import parse
from graphql.utilities import get_operation_ast
from hypothesis import given
from hypothesis import strategies as st

from idgraph.api.limits import Analysis, ListSizes
from idgraph.api.schema import build_schema
from idgraph.config import ApiSettings, Settings, load_settings
from idgraph.errors import ConfigError
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import Api, codes, open_api
from tests.api.readme import quick_start
from tests.events import event

RESOLVE = 'resolve(identifier: {kind: "email", value: "a@x.com"})'
PAGE = "identifiers(first: 100) { edges { node { customer { %s } } } }"
NESTED = f"{{ {RESOLVE} {{ {PAGE % (PAGE % 'consents { purpose }')} }} }}"


async def limited(store: Store, **limits: object) -> AsyncIterator[Api]:
    async for api in open_api(Settings(api=ApiSettings(**limits)), store):  # type: ignore[arg-type]
        yield api


def cost(message: str) -> int:
    found = re.search(r"cost is ([\d,]+)", message)
    assert found, message
    return int(found.group(1).replace(",", ""))


def fragment_chain(levels: int, distinct: bool) -> str:
    """``F{n}`` spreads ``F{n-1}`` twice (or ``F{n-1}`` and its twin ``G{n-1}``)."""
    names = "FG" if distinct else "F"
    fragments = [f"fragment {name}0 on Customer {{ id size }}" for name in names]
    for n in range(1, levels):
        other = names[-1]
        for name in names:
            fragments.append(f"fragment {name}{n} on Customer {{ ...F{n - 1} ...{other}{n - 1} }}")
    return f"{{ {RESOLVE} {{ ...F{levels - 1} }} }}\n" + "\n".join(fragments)


async def test_nested_lists_are_refused_before_running_with_cost_and_limit(api: Api) -> None:
    result = await api.query(NESTED)
    assert codes(result) == ["QUERY_TOO_COMPLEX"]
    assert "data" not in result  # refused before it ran
    message = result["errors"][0]["message"]
    # two pages of 100 identifiers, each with its customer's 20 consents
    assert cost(message) == 1 + 1 + 100 * (3 + 1 + 100 * (4 + 20 * 1)) == 240_402
    assert "limit of 100,000" in message


async def test_the_readme_query_is_well_inside_the_budget(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:alice@example.com")])
    _, _, body = quick_start({"IDGRAPH_KEY": "unused"})
    assert (await api.data(body["query"], body["variables"]))["resolve"]["id"]


async def test_a_fragment_spread_twice_is_measured_once_and_runs(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:a@x.com")])
    data = await api.data(fragment_chain(60, distinct=False))
    assert data["resolve"]["size"] == 1


async def test_twin_fragments_multiply_and_are_refused(api: Api) -> None:
    result = await api.query(fragment_chain(60, distinct=True))
    assert codes(result) == ["QUERY_TOO_COMPLEX"]
    assert "over 1,000,000,000,000,000" in result["errors"][0]["message"]


async def test_a_page_size_variable_counts(store: Store) -> None:
    query = (
        "query($n: Int) { conflicts(first: $n) "
        "{ edges { node { customerA { consents { purpose } } } } } }"
    )
    async for api in limited(store, max_cost=1000):
        small = await api.query(query, {"n": 5})
        assert "errors" not in small, small
        big = await api.query(query, {"n": 100})
        assert codes(big) == ["QUERY_TOO_COMPLEX"]
        assert cost(big["errors"][0]["message"]) == 1 + 100 * (1 + 1 + 1 * (1 + 1 + 20 * 1))


@pytest.mark.parametrize(
    "query",
    [
        "{ " + RESOLVE + " {" + " id" * 11 + " } }",
        "{ " + RESOLVE + " {" + " ... on Customer { id }" * 11 + " } }",
        "{ "
        + RESOLVE
        + " { "
        + " ".join(f"...F{n}" for n in range(11))
        + " } }"
        + "".join(f" fragment F{n} on Customer {{ id }}" for n in range(11)),
        # in an operation that is not the one run, too
        "query A { __typename } query B { " + "__typename " * 11 + "}",
    ],
)
async def test_repeated_fields_or_fragments_are_refused_before_validation(
    api: Api, query: str
) -> None:
    body = {"query": query, "operationName": "A" if "query A" in query else None}
    result = (await api.client.post("/graphql", json=body, headers=api.headers)).json()
    assert codes(result) == ["QUERY_TOO_COMPLEX"]
    assert "(at most 10)" in result["errors"][0]["message"]


async def test_a_document_over_the_token_limit_is_not_parsed(store: Store) -> None:
    async for api in limited(store, max_tokens=50):
        result = await api.query("{" + " __typename" * 60 + "}")
        assert codes(result) == ["GRAPHQL_PARSE_FAILED"]
        assert "more than 50 tokens" in result["errors"][0]["message"]


async def test_a_query_over_the_timeout_is_cut_but_a_mutation_runs_to_its_end(
    store: Store,
) -> None:
    async for api in limited(store, timeout=1e-9):  # every wait is over the limit
        result = await api.query(f"{{ {RESOLVE} {{ id }} }}")
        assert codes(result) == ["TIMEOUT"]
        assert result["data"] is None
        ingest = """mutation { ingest(events: [{id: "t1", timestamp: "2026-03-01T00:00:00Z",
          source: "web", identifiers: [{kind: "email", value: "t@x.com"}]}]) { accepted } }"""
        assert (await api.data(ingest))["ingest"]["accepted"] == 1


async def test_a_response_over_the_size_limit_is_replaced_by_an_error(
    store: Store, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:a@x.com")])
    async for api in limited(store, max_response_bytes=200):
        assert "errors" not in await api.query(f"{{ {RESOLVE} {{ id }} }}")
        identifiers = "identifiers { edges { node { id kind value } } }"
        query = f"{{ {RESOLVE} {{ id size createdAt updatedAt {identifiers} }} }}"
        response = await api.post(query)
        assert response.status_code == 200
        assert len(response.content) < 300
        assert codes(response.json()) == ["RESPONSE_TOO_LARGE"]


# ---- the measure itself --------------------------------------------------------------

SCHEMA = build_schema(ApiSettings())
SIZES = ListSizes(ApiSettings(), 1000)
SIZES.learn(SCHEMA._schema)

# Selections on Customer, as (field, children): children None for a leaf.
LEAVES = ["id", "size", "createdAt"]


def measure(query: str) -> tuple[int, int, int]:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    found = Analysis(SCHEMA._schema, document, SIZES, {}).operation(operation)
    return found.depth, found.aliases, found.cost


selections = st.recursive(
    st.lists(st.sampled_from(LEAVES), min_size=1, max_size=3).map(" ".join),
    lambda inner: st.lists(
        st.tuples(st.sampled_from(["identifiers", "devices"]), inner).map(
            lambda pair: f"{pair[0]} {{ edges {{ node {{ id customer {{ {pair[1]} }} }} }} }}"
        ),
        min_size=1,
        max_size=2,
    ).map(" ".join),
    max_leaves=6,
)


@given(selections)
def test_fragments_measure_like_the_selections_they_stand_for(body: str) -> None:
    inline = f"{{ {RESOLVE} {{ {body} }} }}"
    spread = f"{{ {RESOLVE} {{ ...P }} }} fragment P on Customer {{ {body} }}"
    assert measure(spread) == measure(inline)


def test_the_readme_query_costs_a_tenth_of_the_budget_at_most() -> None:
    _, _, body = quick_start({"IDGRAPH_KEY": "unused"})
    assert measure(body["query"])[2] < ApiSettings().max_cost / 10


def test_list_sizes_multiply() -> None:
    assert measure(f"{{ {RESOLVE} {{ id }} }}") == (1, 0, 2)
    # a customer's lists are connections: counted by their page size, 20 by default
    identifiers = "identifiers { edges { node { id } } }"
    assert measure(f"{{ {RESOLVE} {{ {identifiers} }} }}") == (4, 0, 1 + 1 + 20 * 3)
    many = "identifiers(first: 100) { edges { node { id } } }"
    assert measure(f"{{ {RESOLVE} {{ {many} }} }}") == (4, 0, 1 + 1 + 100 * 3)
    traits = "traits(first: 5) { edges { node { name } } totalCount }"
    assert measure(f"{{ {RESOLVE} {{ {traits} }} }}") == (4, 0, 1 + 1 + 5 * (3 + 1))
    consents = "consents { purpose }"  # a list without pages: `list_size`
    assert measure(f"{{ {RESOLVE} {{ {consents} }} }}") == (2, 0, 1 + 1 + 20)
    page = "interactions(first: 3) { edges { node { id } } pageInfo { hasNextPage } }"
    assert measure(f"{{ {RESOLVE} {{ {page} }} }}") == (4, 0, 1 + 1 + 3 * (3 + 2))
    assert measure(f"{{ a: {RESOLVE} {{ id }} b: {RESOLVE} {{ id }} }}") == (1, 2, 4)


# ---- settings ------------------------------------------------------------------------


def test_the_readme_config_example_sets_api_limits(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = re.search(r"```toml\n(# idgraph.toml.*?)```", readme, re.S)
    assert example, "the README has an idgraph.toml example"
    (tmp_path / "idgraph.toml").write_text(example.group(1))
    api = load_settings({}, tmp_path / "idgraph.toml").api
    assert (api.max_cost, api.timeout, api.auth_failures) == (100_000, 10.0, 20)


def test_api_limits_can_be_set_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "idgraph.toml"
    config.write_text("[api]\nmax_cost = 5000\ntimeout = 2.5\nauth_failures = 3\n")
    api = load_settings({}, config).api
    assert (api.max_cost, api.timeout, api.auth_failures) == (5000, 2.5, 3)
    for bad in ("max_cost = 0", "max_cost = 1.5", 'timeout = "1"', "port = 0", "nope = 1"):
        config.write_text(f"[api]\n{bad}\n")
        with pytest.raises(ConfigError, match="api"):
            load_settings({}, config)
