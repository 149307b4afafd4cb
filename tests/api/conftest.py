"""API tests go through real HTTP requests to the ASGI app (httpx), with the app's
lifespan run explicitly; the ``store`` fixture runs them on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from idgraph.api.app import create_app
from idgraph.config import Settings
from idgraph.store.port import Store


class Api:
    """A client for one app: ``await api.query(...)`` returns the decoded response."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        """The ``data`` of a response that must have no errors."""
        result = await self.query(query, variables, **headers)
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data


async def open_api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://idgraph") as client:
            yield Api(client)


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async for opened in open_api(settings, store):
        yield opened


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]
