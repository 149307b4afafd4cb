"""GraphQL over HTTP: the ``application/graphql-response+json`` media type, request
errors with no ``data`` entry, and the ``graphql-http`` audit run by node against a live
server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from strawberry.types import ExecutionResult

from idgraph.api.app import GraphQLView
from idgraph.api.http import GRAPHQL_RESPONSE, JSON, response_media_type
from idgraph.api.metrics import Metrics
from idgraph.api.schema import build_schema
from idgraph.api.tokens import Tokens
from idgraph.config import Settings
from tests.api.conftest import Api, codes
from tests.api.live import live_server

AUDIT = Path(__file__).parent / "audit"
RESPONSE_JSON = f"{GRAPHQL_RESPONSE}, {JSON};q=0.9"
RESOLVE = "query($id: IdentifierInput!) { resolve(identifier: $id) { id } }"


async def post(api: Api, body: dict[str, Any], accept: str) -> httpx.Response:
    return await api.client.post("/graphql", json=body, headers={**api.headers, "Accept": accept})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ resolve(identifier: "}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": RESOLVE, "variables": {"id": 7}}, "BAD_USER_INPUT"),
        ({"query": RESOLVE}, "BAD_USER_INPUT"),
    ],
)
async def test_a_request_error_is_400_with_no_data_for_graphql_response_json(
    api: Api, body: dict[str, Any], code: str
) -> None:
    response = await post(api, body, RESPONSE_JSON)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    result = response.json()
    assert "data" not in result
    assert codes(result) == [code]


@pytest.mark.parametrize("accept", [JSON, "*/*", ""])
async def test_a_request_error_stays_200_with_no_data_for_json_clients(
    api: Api, accept: str
) -> None:
    response = await post(api, {"query": "{ nope }"}, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    result = response.json()
    assert "data" not in result
    assert codes(result) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_a_result_comes_in_the_media_type_asked_for(api: Api) -> None:
    response = await post(api, {"query": "{ __typename }"}, GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_an_error_during_execution_keeps_its_data_and_200(api: Api) -> None:
    variables = {"id": {"kind": "email", "value": "not-an-email"}}
    response = await post(api, {"query": RESOLVE, "variables": variables}, RESPONSE_JSON)
    assert response.status_code == 200
    assert response.json()["data"] == {"resolve": None}
    assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_http_errors_come_in_the_media_type_asked_for(api: Api) -> None:
    response = await api.client.post(
        "/graphql", content=b"{not json", headers={**api.headers, "Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in response.json()


@given(
    json_q=st.sampled_from(["", ";q=1", ";q=0.5", ";q=0"]),
    response_q=st.sampled_from(["", ";q=1", ";q=0.5", ";q=0"]),
    json_first=st.booleans(),
)
def test_graphql_response_json_is_chosen_when_accepted_at_least_as_much_as_json(
    json_q: str, response_q: str, json_first: bool
) -> None:
    entries = [f"{JSON}{json_q}", f"{GRAPHQL_RESPONSE}{response_q}"]
    accept = ", ".join(entries if json_first else entries[::-1])

    def quality(q: str) -> float:
        return float(q.removeprefix(";q=")) if q else 1.0

    wanted = quality(response_q)
    expected = GRAPHQL_RESPONSE if wanted > 0 and wanted >= quality(json_q) else JSON
    assert response_media_type(accept) == expected


async def test_result_extensions_are_passed_through() -> None:
    """No extension of idgraph's schema reports results yet; one that does is heard."""
    settings = Settings()
    schema = build_schema(settings.api)
    view = GraphQLView(schema, Metrics(), settings.api, Tokens.from_secret(settings.secret()))
    request = Request({"type": "http", "method": "POST", "headers": []})
    result = ExecutionResult(data={"a": 1}, errors=None, extensions={"cost": 3})
    assert await view.process_result(request, result) == {
        "data": {"a": 1},
        "extensions": {"cost": 3},
    }


@pytest.mark.skipif(shutil.which("npm") is None, reason="the audit needs node and npm")
def test_the_graphql_http_audit_has_no_failures_and_no_warnings(tmp_path: Path) -> None:
    runner = tmp_path / "audit"
    shutil.copytree(AUDIT, runner)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=runner,
        check=True,
        timeout=300,
    )
    with live_server(tmp_path) as server:
        ran = subprocess.run(
            ["node", "audit.mjs", f"{server.base}/graphql"],
            cwd=runner,
            env={"PATH": os.environ["PATH"], "IDGRAPH_KEY": server.keys["IDGRAPH_KEY"]},
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    results = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(results) > 50
    assert [r for r in results if r["status"] != "ok"] == []
