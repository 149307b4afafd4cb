"""Health, readiness, metrics, GraphiQL and GraphQL over GET."""

from __future__ import annotations

from typing import Any

from idgraph.config import ApiSettings, Settings
from idgraph.errors import StoreUnavailable
from idgraph.store.port import Store
from tests.api.conftest import Api, open_api

INGEST = """mutation { ingest(events: [
  {id: "m1", timestamp: "2026-03-01T00:00:00Z", source: "web",
   identifiers: [{kind: "email", value: "a@x.com"}]},
  {id: "m2", timestamp: "2026-03-01T00:00:00Z", source: "web",
   identifiers: [{kind: "email", value: "a@x.com"}, {kind: "cookie", value: "c1"}]},
  {id: "m3", timestamp: "nope", source: "web"}
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
    assert (await api.data(INGEST))["ingest"]["accepted"] == 2
    await api.client.get("/healthz")
    await api.client.get("/nowhere")
    response = await api.client.get("/metrics", headers=api.headers)
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = response.text.splitlines()
    for expected in [
        "# TYPE idgraph_http_requests_total counter",
        'idgraph_http_requests_total{path="/graphql",method="POST",status="200"} 1',
        'idgraph_http_requests_total{path="/healthz",method="GET",status="200"} 1',
        'idgraph_http_requests_total{path="other",method="GET",status="404"} 1',
        "# TYPE idgraph_http_request_duration_seconds histogram",
        'idgraph_http_request_duration_seconds_bucket{path="/graphql",le="+Inf"} 1',
        'idgraph_http_request_duration_seconds_count{path="/graphql"} 1',
        'idgraph_ingest_events_total{outcome="accepted"} 2',
        'idgraph_ingest_events_total{outcome="rejected"} 1',
        "idgraph_ingest_new_customers_total 1",
        "idgraph_ingest_merges_total 0",
    ]:
        assert expected in lines, expected
    buckets = [line for line in lines if line.startswith("idgraph_http_request_duration_seconds_b")]
    counts = [int(line.rsplit(" ", 1)[1]) for line in buckets if 'path="/graphql"' in line]
    assert counts == sorted(counts), "histogram buckets are cumulative"


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
