"""``viewer``: a key learns its own name, role, permissions and purposes."""

from __future__ import annotations

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, key_headers, new_key

VIEWER = "{ viewer { name role permissions purposes purpose } }"


async def test_a_key_sees_its_role_permissions_and_purposes(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    secret = await new_key(graph.store, settings, "shop-frontend", "reader", ["support"])
    assert (await api.as_(secret).data(VIEWER))["viewer"] == {
        "name": "shop-frontend",
        "role": "READER",
        "permissions": ["READ_PROFILE", "RESOLVE"],
        "purposes": ["support"],
        "purpose": "support",
    }
    admin = (await api.data(VIEWER))["viewer"]
    assert admin["role"] == "ADMIN"
    assert set(admin["permissions"]) >= {"FORGET", "READ_AUDIT", "OPERATE", "STEWARD"}


async def test_viewer_answers_without_a_usable_purpose(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    secret = await new_key(graph.store, settings, "crm", "reader", ["support"])
    marketing = (await api.as_(secret, "marketing").data(VIEWER))["viewer"]
    assert (marketing["purposes"], marketing["purpose"]) == (["support"], None)
    headers = {"Authorization": key_headers(secret)["Authorization"]}  # no X-Purpose
    response = await api.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert response.json()["data"]["viewer"]["purpose"] is None


async def test_viewer_holds_no_secret(api: Api, graph: IdentityGraph, settings: Settings) -> None:
    secret = await new_key(graph.store, settings, "ops", "steward")
    response = await api.as_(secret).post(VIEWER)
    [key] = [k for k in await graph.store.api_keys() if k.name == "ops"]
    assert secret not in response.text
    assert key.secret_hash not in response.text
