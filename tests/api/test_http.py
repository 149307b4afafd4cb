"""Health, readiness, metrics, GraphiQL, GraphQL over GET, bodies that are not GraphQL
requests, throttled authentication."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from idgraph.api.app import create_app
from idgraph.api.throttle import AuthThrottle
from idgraph.config import ApiSettings, Settings
from idgraph.errors import StoreUnavailable
from idgraph.store.port import Store
from tests.api.conftest import Api, new_key, open_api
from tests.api.scrape import samples, types, value

INGEST = """mutation { ingest(events: [
  {id: "m1", timestamp: "2026-03-01T00:00:00Z", source: "web",
   identifiers: [{kind: "email", value: "a@x.com"}]},
  {id: "m2", timestamp: "2026-03-01T00:00:00Z", source: "web",
   identifiers: [{kind: "email", value: "a@x.com"}, {kind: "cookie", value: "c1"}]},
  {id: "m3", timestamp: "1969-12-31T23:59:59Z", source: "web"}
]) { accepted } }"""


async def test_healthz_and_readyz(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


class DownStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def ping(self) -> None:
        raise StoreUnavailable("cannot reach the store")


async def test_readyz_is_503_when_the_store_does_not_answer(
    store: Store, settings: Settings
) -> None:
    async for api in open_api(settings, DownStore(store)):  # type: ignore[arg-type]
        assert (await api.client.get("/healthz")).status_code == 200
        down = await api.client.get("/readyz")
        assert (down.status_code, down.json()) == (503, {"status": "unavailable"})


async def test_metrics_in_prometheus_text_format(api: Api) -> None:
    before = samples((await api.client.get("/metrics", headers=api.headers)).text)
    # Labelled counters have their samples before anything happened.
    assert value(before, "idgraph_ingest_events_total", outcome="rejected") == 0
    assert value(before, "idgraph_graphql_errors_total", code="GRAPHQL_PARSE_FAILED") is None
    assert value(before, "idgraph_ingest_merges_total") == 0
    assert (await api.data(INGEST))["ingest"]["accepted"] == 2
    await api.client.get("/healthz")
    await api.client.get("/nowhere")
    response = await api.client.get("/metrics", headers=api.headers)
    assert response.headers["content-type"].startswith("text/plain; version=")
    parsed = samples(response.text)
    requests = "idgraph_http_requests_total"
    assert value(parsed, requests, path="/graphql", method="POST", status="200") == 1
    assert value(parsed, requests, path="/healthz", method="GET", status="200") == 1
    assert value(parsed, requests, path="other", method="GET", status="404") == 1
    latency = "idgraph_http_request_duration_seconds"
    assert value(parsed, f"{latency}_bucket", path="/graphql", le="+Inf") == 1
    assert value(parsed, f"{latency}_count", path="/graphql") == 1
    assert value(parsed, "idgraph_ingest_events_total", outcome="accepted") == 2
    assert value(parsed, "idgraph_ingest_events_total", outcome="rejected") == 1
    assert value(parsed, "idgraph_ingest_new_customers_total") == 1
    assert value(parsed, "idgraph_ingest_merges_total") == 0
    assert value(parsed, "idgraph_store_customers") == 1
    assert value(parsed, "idgraph_store_identity_nodes") == 2
    assert value(parsed, "idgraph_store_up") == 1
    assert value(parsed, "process_cpu_seconds_total") is not None
    assert value(parsed, "process_resident_memory_bytes")
    assert types(response.text)[latency] == "histogram"
    buckets = {
        float(dict(labels)["le"]): v
        for (name, labels), v in parsed.items()
        if name == f"{latency}_bucket" and ("path", "/graphql") in labels
    }
    cumulative = [buckets[le] for le in sorted(buckets)]
    assert cumulative == sorted(cumulative), "histogram buckets are cumulative"


async def test_graphiql_is_off_unless_enabled_and_queries_over_get_need_a_key(
    api: Api,
) -> None:
    html = {"accept": "text/html"}
    assert (await api.client.get("/graphql", headers=html)).status_code == 401
    assert (await api.client.get("/graphql", headers={**html, **api.headers})).status_code == 404
    query = {"query": "{ __typename }"}
    assert (await api.client.get("/graphql", params=query)).status_code == 401
    response = await api.client.get("/graphql", params=query, headers=api.headers)
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_graphiql_when_enabled_serves_its_page_but_queries_still_need_a_key(
    store: Store,
) -> None:
    settings = Settings(api=ApiSettings(graphiql=True))
    async for api in open_api(settings, store):
        page = await api.client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "GraphiQL" in page.text
        query = {"query": "{ __typename }"}
        assert (await api.client.get("/graphql", params=query)).status_code == 401


# ---- HTTP edges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"null",
        b"5",
        b'"x"',
        b"true",
        b"[]",
        b'[{"query": "{ __typename }"}]',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"query": "{ __typename }", "variables": ' + b'{"a": ' * 2_100 + b"1" + b"}" * 2_101,
        b'{"query": "\xff"}',
        b'{"query": "{ __typename }", "operationName": ["x"]}',
        b"{",
    ],
)
async def test_a_body_that_is_not_a_graphql_request_is_a_400_in_graphql_shape(
    api: Api, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**api.headers, "content-type": "application/json"}
    response = await api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert not caplog.records


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($id: ID!) { customer(id: $id) { id } }", '{"id": "cus_\\ud800"}'),
        ("query($id: ID!) { node(id: $id) { id } }", '{"id": "\\udfff"}'),
        (
            "query($c: ID) { auditLog(customerId: $c) { edges { cursor } } }",
            '{"c": "a\\ud800b"}',
        ),
        (
            'mutation($r: String) { unlink(a: {kind: "cookie", value: "x"}, '
            'b: {kind: "cookie", value: "y"}, reason: $r) { actor } }',
            '{"r": "\\ud800"}',
        ),
    ],
)
async def test_a_lone_surrogate_in_a_variable_is_bad_user_input(
    api: Api, query: str, variables: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Valid JSON, text no store could keep: refused before anything runs (inside an
    event it is refused per event instead: see tests/test_hostile_events.py)."""
    body = f'{{"query": {json.dumps(query)}, "variables": {variables}}}'
    headers = {**api.headers, "content-type": "application/json"}
    response = await api.client.post("/graphql", content=body.encode(), headers=headers)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "lone surrogate" in error["message"]
    assert not caplog.records


async def test_nan_and_odd_operation_names_are_no_server_errors(api: Api) -> None:
    headers = {**api.headers, "content-type": "application/json"}
    for body in (
        b'{"query": "{ __typename }", "variables": {"a": NaN}}',
        b'{"query": "query($n: Int) { conflicts(first: $n) { edges { cursor } } }", '
        b'"variables": {"n": NaN}}',
        b'{"query": "{ __typename }", "operationName": "\\ud800"}',
    ):
        response = await api.client.post("/graphql", content=body, headers=headers)
        assert response.status_code < 500
        assert "INTERNAL" not in response.text


async def test_nesting_within_the_limit_reaches_graphql(api: Api) -> None:
    variables = json.loads('{"a": ' * 100 + "1" + "}" * 100)
    response = await api.post("{ __typename }", {"a": variables})
    assert response.json() == {"data": {"__typename": "Query"}}


def clients(app: Starlette, *hosts: str) -> list[httpx.AsyncClient]:
    return [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(host, 1234)), base_url="http://idgraph"
        )
        for host in hosts
    ]


async def test_repeated_failed_authentication_is_throttled_per_client_address(
    store: Store,
) -> None:
    settings = Settings(api=ApiSettings(auth_failures=3))
    secret = await new_key(store, settings, "ok", "reader")
    good = {"Authorization": f"Bearer {secret}", "X-Purpose": "support"}
    query = {"query": "{ __typename }"}
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        guesser, other = clients(app, "10.0.0.1", "10.0.0.2")
        async with guesser, other:
            for n in range(3):
                bad = {"Authorization": f"Bearer idg_guess{n}"}
                assert (await guesser.post("/graphql", json=query, headers=bad)).status_code == 401
            for headers in ({"Authorization": "Bearer idg_guess"}, good):
                refused = await guesser.post("/graphql", json=query, headers=headers)
                assert refused.status_code == 429
                assert 1 <= int(refused.headers["Retry-After"]) <= 60
                assert refused.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_REQUESTS"
            assert (await guesser.get("/metrics", headers=good)).status_code == 429
            assert (await guesser.get("/healthz")).status_code == 200
            assert (await other.post("/graphql", json=query, headers=good)).status_code == 200


def test_the_throttle_forgets_a_client_when_its_window_ends() -> None:
    now = [0.0]
    throttle = AuthThrottle(failures=2, window=60, clock=lambda: now[0], max_clients=2)
    throttle.failed("a")
    assert throttle.retry_after("a") is None
    now[0] = 10.0
    throttle.failed("a")
    assert throttle.retry_after("a") == 50
    now[0] = 59.5
    assert throttle.retry_after("a") == 1
    now[0] = 60.0
    assert throttle.retry_after("a") is None
    for client in "bcd":  # at most two remembered: the oldest goes first
        throttle.failed(client)
        throttle.failed(client)
    assert list(throttle.clients) == ["c", "d"]


async def test_an_error_quoting_a_lone_surrogate_is_still_json(api: Api) -> None:
    """Responses are UTF-8 JSON; text that has no UTF-8 form (a lone surrogate quoted
    back from the request) comes back escaped rather than breaking the response."""
    headers = {**api.headers, "content-type": "application/json"}
    body = b'{"query": "query A { __typename }", "operationName": "\\ud800"}'
    response = await api.client.post("/graphql", content=body, headers=headers)
    [error] = response.json()["errors"]
    assert "\ud800" in error["message"]
