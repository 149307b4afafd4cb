"""API tests go through real HTTP requests to the ASGI app (httpx), with the app's
lifespan run explicitly; the ``store`` fixture runs them on every backend.

Every request carries an API key: ``api`` sends an admin key's (``test-admin``) under
the default-allow purpose ``support``; ``api.as_(secret, purpose)`` speaks as another
key, made with :func:`new_key`. Every app runs on the server secret :data:`SECRET` (the
ids and cursors it hands out are encrypted with a key derived from it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from idgraph.api.app import create_app
from idgraph.config import Settings
from idgraph.keys import KeyRing
from idgraph.store.port import Store

ADMIN = "test-admin"
PURPOSE = "support"
# ``resolve`` as bench/api.py asks it: identifiers, traits and 20 interactions.
RESOLVE_PROFILE = (
    "query($id: IdentifierInput!) { resolve(identifier: $id) { id size "
    "identifiers { edges { node { kind value } } } traits { edges { node { name value } } } "
    "interactions(first: 20) { edges { node { type at channel } } } } }"
)
ALICE = {"kind": "email", "value": "alice@example.com"}  # the demo featured customer's email


@pytest.fixture(autouse=True)
def _every_app_has_the_test_secret(server_secret: str) -> None:
    """Every app in these tests runs on :data:`SECRET` (see ``server_secret``)."""


def key_headers(secret: str, purpose: str = PURPOSE) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "X-Purpose": purpose}


async def new_key(
    store: Store, settings: Settings, name: str, role: str, purposes: list[str] | None = None
) -> str:
    """A new key's secret; by default it may use every configured purpose."""
    names = purposes if purposes is not None else [p.name for p in settings.purposes]
    _, secret = await KeyRing(store, settings).create(name, role, names)
    return secret


class Api:
    """A client for one app: ``await api.query(...)`` returns the decoded response."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def as_(self, secret: str, purpose: str = PURPOSE) -> Api:
        """The same app, spoken to with another key and purpose."""
        return Api(self.client, key_headers(secret, purpose))

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        return await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={**self.headers, **headers},
        )

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        response = await self.post(query, variables, **headers)
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


async def open_api(settings: Settings, store: Store, admin: str = ADMIN) -> AsyncIterator[Api]:
    """An app on ``store``, and a client speaking as a new admin key named ``admin``."""
    secret = await new_key(store, settings, admin, "admin")
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://idgraph") as client:
            yield Api(client, key_headers(secret))


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async for opened in open_api(settings, store):
        yield opened


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


def nodes(connection: dict[str, Any]) -> list[Any]:
    """The items of a connection's page, in order."""
    return [edge["node"] for edge in connection["edges"]]
