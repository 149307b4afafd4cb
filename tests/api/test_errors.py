"""Bad input gets a clear error with a stable extensions.code, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import Api, codes, open_api
from tests.api.scrape import samples, value
from tests.events import event

RESOLVE = '{ resolve(identifier: {kind: "email", value: "a@x.com"}) { id } }'


async def test_malformed_graphql_is_a_parse_error(api: Api) -> None:
    result = await api.query("{ resolve(identifier: ")
    assert codes(result) == ["GRAPHQL_PARSE_FAILED"]
    assert result["errors"][0]["message"].startswith("Syntax Error")
    assert "data" not in result  # nothing ran


async def test_unknown_fields_fail_validation(api: Api) -> None:
    result = await api.query('{ resolve(identifier: {kind: "email", value: "a@x.com"}) { bogus } }')
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "bogus" in result["errors"][0]["message"]


async def test_wrong_variable_types_are_bad_user_input(api: Api) -> None:
    query = "query($first: Int) { conflicts(first: $first) { edges { cursor } } }"
    result = await api.query(query, {"first": "many"})
    assert codes(result) == ["BAD_USER_INPUT"]
    missing = await api.query("query($id: ID!) { customer(id: $id) { id } }", {})
    assert codes(missing) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("email", "not-an-email", "value: invalid email address"),
        ("phone", "12", "value: invalid phone number"),
        ("Bad Kind", "x", "kind: kind 'Bad Kind' must match"),
        ("account", "no-system", "is not account:system:id"),
    ],
)
async def test_invalid_identifiers_are_bad_user_input(
    api: Api, kind: str, value: str, message: str
) -> None:
    result = await api.query(
        "query($id: IdentifierInput!) { resolve(identifier: $id) { id } }",
        {"id": {"kind": kind, "value": value}},
    )
    assert codes(result) == ["BAD_USER_INPUT"]
    assert message in result["errors"][0]["message"]
    assert result["data"] == {"resolve": None}


async def test_a_query_deeper_than_the_limit_is_refused(api: Api) -> None:
    nested = "id"
    for _ in range(6):
        nested = f"identifiers {{ edges {{ node {{ customer {{ {nested} }} }} }} }}"
    result = await api.query(f'{{ customer(id: "cus_x") {{ {nested} }} }}')
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "exceeds maximum operation depth of 10" in result["errors"][0]["message"]
    shallow = '{ customer(id: "cus_x") { identifiers { edges { node { customer { id } } } } } }'
    assert "errors" not in await api.query(shallow)


async def test_too_many_aliases_are_refused(api: Api) -> None:
    aliases = " ".join(f'c{n}: customer(id: "cus_{n}") {{ id }}' for n in range(31))
    result = await api.query(f"{{ {aliases} }}")
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "31 aliases found. Allowed: 30" in result["errors"][0]["message"]


@pytest.mark.parametrize("first", [101, -1])
async def test_page_size_outside_0_to_100_is_refused(api: Api, first: int) -> None:
    result = await api.query(f"{{ conflicts(first: {first}) {{ edges {{ cursor }} }} }}")
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "first: must be between 0 and 100" in result["errors"][0]["message"]


async def test_a_forged_cursor_is_refused(api: Api) -> None:
    result = await api.query('{ conflicts(after: "bm90IGEgY3Vyc29y") { edges { cursor } } }')
    assert codes(result) == ["BAD_USER_INPUT"]


async def test_a_naive_since_is_refused(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    query = (
        '{ resolve(identifier: {kind: "email", value: "a@x.com"}) '
        '{ interactions(since: "2026-01-01T00:00:00") { edges { cursor } } } }'
    )
    assert codes(await api.query(query)) == ["GRAPHQL_VALIDATION_FAILED"]  # a bad literal
    variable = query.replace('"2026-01-01T00:00:00"', "$since").replace(
        "{ resolve", "query($since: DateTime) { resolve", 1
    )
    result = await api.query(variable, {"since": "2026-01-01T00:00:00"})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "needs a time zone offset" in result["errors"][0]["message"]


async def test_bodies_over_the_limit_get_413(api: Api) -> None:
    padding = "x" * 1_048_577
    response = await api.post(RESOLVE, {"p": padding})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> Any:
        for _ in range(3):
            yield b"x" * 600_000

    streamed = await api.client.post(
        "/graphql", content=chunks(), headers={**api.headers, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_http_level_mistakes_get_json_errors(api: Api) -> None:
    bad_json = await api.client.post(
        "/graphql", content=b"{nope", headers={**api.headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    mutation_by_get = await api.client.get(
        "/graphql",
        params={"query": "mutation { ingest(events: []) { accepted } }"},
        headers=api.headers,
    )
    assert mutation_by_get.status_code == 400
    assert mutation_by_get.json()["errors"] == [
        {
            "message": "mutations are not allowed when using GET",
            "extensions": {"code": "BAD_REQUEST"},
        }
    ]
    put = await api.client.put("/graphql", json={"query": "{ __typename }"}, headers=api.headers)
    assert put.status_code == 405
    assert put.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


class FailingStore:
    """A store whose reads fail unexpectedly, with personal data in the message."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def profiles(self, keys: Any, read: Any) -> dict[str, Any]:
        raise RuntimeError("boom for alice@example.com")


async def test_unexpected_errors_are_masked_and_logged_without_personal_data(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async for api in open_api(settings, FailingStore(store)):  # type: ignore[arg-type]
        result = await api.query(RESOLVE)
    assert result["errors"] == [
        {
            "message": "Internal server error.",
            "locations": [{"line": 1, "column": 3}],
            "path": ["resolve"],
            "extensions": {"code": "INTERNAL"},
        }
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "builtins.RuntimeError" in logged
    assert "alice" not in logged
    assert "alice" not in str(result)


async def test_bad_input_in_a_batch_writes_nothing(api: Api, graph: IdentityGraph) -> None:
    mutation = "mutation($e: [EventInput!]!) { ingest(events: $e) { accepted } }"
    incomplete = [{"id": "x", "source": "web"}]  # timestamp missing: a GraphQL type error
    assert codes(await api.query(mutation, {"e": incomplete})) == ["BAD_USER_INPUT"]
    assert (await graph.store.counts())["events"] == 0


async def test_errors_are_counted_by_code(api: Api) -> None:
    await api.query("{ nope }")
    await api.query("{ ")
    parsed = samples((await api.client.get("/metrics", headers=api.headers)).text)
    errors = "idgraph_graphql_errors_total"
    assert value(parsed, errors, code="GRAPHQL_VALIDATION_FAILED") == 1
    assert value(parsed, errors, code="GRAPHQL_PARSE_FAILED") == 1
