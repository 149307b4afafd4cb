"""A POST of one operation in JSON takes the view's short path (``GraphQLView.run``);
every answer must be the one Strawberry's own ``run`` gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idgraph.api.app import GraphQLView
from tests.api.conftest import Api

GRAPHQL_RESPONSE = "application/graphql-response+json"

BODIES: list[dict[str, Any]] = [
    {"query": "{ __typename }"},
    {"query": "query($n: Int) { conflicts(first: $n) { edges { cursor } } }", "variables": {}},
    {"query": "query($n: Int!) { conflicts(first: $n) { edges { cursor } } }"},
    {
        "query": "query($n: Int) { conflicts(first: $n) { edges { cursor } } }",
        "variables": {"n": "x"},
    },
    {"query": "query A { __typename } query B { __typename }"},
    {"query": "query A { __typename } query B { __typename }", "operationName": "B"},
    {"query": "query A { __typename }", "operationName": "C"},
    {"query": "{ noSuchField }"},
    {"query": "mutation { noSuchField }"},
    {"query": "subscription { noSuchField }"},
    {"query": "{ __typename", "extensions": {}},
    {"query": "", "variables": None},
    {"query": None},
    {"query": "{ __typename }", "variables": []},
    {"query": "{ __typename }", "extensions": "x"},
    {"query": 5},
    {"query": '{ customer(id: "cus_x") { id } }', "operationName": None},
]


async def answers(api: Api, accept: str) -> list[tuple[int, str, Any]]:
    found = []
    for body in BODIES:
        response = await api.client.post(
            "/graphql",
            content=json.dumps(body).encode(),
            headers={**api.headers, "content-type": "application/json", "accept": accept},
        )
        found.append((response.status_code, response.headers["content-type"], response.json()))
    return found


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_the_short_path_answers_as_strawberry_does(
    api: Api, accept: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = await answers(api, accept)

    async def never(self: GraphQLView, request: Any) -> None:
        return None

    monkeypatch.setattr(GraphQLView, "_plain_operation", never)
    assert await answers(api, accept) == short
