"""CORS: allowed origins get their preflights answered without a key and can read
responses; other origins get no CORS headers; by default no origin is allowed."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from idgraph.config import Settings, load_settings
from idgraph.errors import ConfigError
from idgraph.store.port import Store
from tests.api.conftest import Api, open_api

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-purpose",
}


@pytest.fixture
async def cors_api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    api = dataclasses.replace(settings.api, cors_origins=(APP, "http://localhost:3000"))
    async for opened in open_api(dataclasses.replace(settings, api=api), store):
        yield opened


async def test_a_preflight_from_an_allowed_origin_is_answered_without_a_key(
    cors_api: Api,
) -> None:
    response = await cors_api.client.options("/graphql", headers={"Origin": APP, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-purpose"} <= set(allowed.split(", "))


async def test_an_allowed_origin_may_read_the_response(cors_api: Api) -> None:
    response = await cors_api.client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={**cors_api.headers, "Origin": APP},
    )
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["access-control-allow-origin"] == APP
    refused = await cors_api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP}
    )
    assert refused.status_code == 401  # the preflight needs no key; the request does
    assert refused.headers["access-control-allow-origin"] == APP


async def test_other_origins_get_no_cors_headers(cors_api: Api) -> None:
    preflight = await cors_api.client.options("/graphql", headers={"Origin": OTHER, **PREFLIGHT})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = await cors_api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={**cors_api.headers, "Origin": OTHER}
    )
    assert not [h for h in response.headers if h.startswith("access-control-")]


async def test_by_default_no_origin_is_allowed(api: Api) -> None:
    preflight = await api.client.options("/graphql", headers={"Origin": APP, **PREFLIGHT})
    assert preflight.status_code >= 400
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    response = await api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={**api.headers, "Origin": APP}
    )
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_origins_come_from_the_environment_or_the_file(tmp_path: Path) -> None:
    config = tmp_path / "idgraph.toml"
    config.write_text(f'[api]\ncors_origins = ["{APP}"]\nmax_depth = 12\n')
    from_file = load_settings({}, config)
    assert from_file.api.cors_origins == (APP,)
    assert from_file.api.max_depth == 12
    env = {"IDGRAPH_CORS_ORIGINS": f" {APP}, http://localhost:3000 ,"}
    assert load_settings(env, config).api.cors_origins == (APP, "http://localhost:3000")


@pytest.mark.parametrize("origin", [f"{APP}/", "app.example.com", "https://a.com/path"])
def test_an_origin_a_browser_never_sends_is_refused_at_start(origin: str) -> None:
    with pytest.raises(ConfigError, match="CORS origin"):
        load_settings({"IDGRAPH_CORS_ORIGINS": origin})
