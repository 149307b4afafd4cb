"""``/ui/health``: the health report page, for keys with the ``operate`` permission only,
with counts and distributions but no personal data, built at most once a minute."""

from __future__ import annotations

import re

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import Api, new_key
from tests.events import event

PAGE = "/ui/health"
PERSONAL = [
    "shared-family@example.com",
    "cookie-7f3a9c",
    "Ramona Quintero",
    "/checkout/secret-path",
    "+14155550123",
]


async def _ingest(store: Store, settings: Settings) -> None:
    await IdentityGraph(store, settings).ingest(
        [
            event(
                "email:shared-family@example.com",
                "cookie:cookie-7f3a9c",
                "phone:+14155550123",
                traits={"name": "Ramona Quintero"},
                interaction={"type": "page_view", "properties": {"path": "/checkout/secret-path"}},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event("email:shared-family@example.com", "cookie:other-visitor"),
        ]
    )


async def test_the_page_needs_a_key_with_the_operate_permission(
    api: Api, store: Store, settings: Settings
) -> None:
    assert (await api.client.get(PAGE)).status_code == 401
    bad = await api.client.get(PAGE, headers={"Authorization": "Bearer idg_nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    reader = await new_key(store, settings, "reader", "reader")
    refused = await api.client.get(PAGE, headers=api.as_(reader).headers)
    assert refused.status_code == 403
    assert "operate" in refused.json()["errors"][0]["message"]

    response = await api.client.get(PAGE, headers=api.headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]


async def test_the_page_plots_the_graph_without_personal_data(
    api: Api, store: Store, settings: Settings
) -> None:
    await _ingest(store, settings)

    page = (await api.client.get(PAGE, headers=api.headers)).text

    assert page.count("<svg") == 7
    for value in PERSONAL:
        assert value not in page
        assert value.split("@")[0] not in page
    # Self-contained: nothing to fetch, no script to run; a chart's ticks refer to a
    # shape drawn once in the same SVG (``xlink:href="#…"``).
    assert "//" not in page.replace("<!doctype html>", "")
    assert not re.search(r"<script|\b(src|href)\s*=\s*\"(?!#)", page, re.I)
    # A super-node candidate is named by kind and opaque id, which node(id:) resolves.
    ids = re.findall(r"<td>(\w+)</td><td><code>(idn_[\w-]+)</code>", page)
    assert ids[0][0] == "email"
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Identifier { kind value } } }",
        {"id": ids[0][1]},
    )
    assert data["node"] == {"kind": "email", "value": "shared-family@example.com"}


async def test_the_page_is_built_once_a_minute_at_most(
    api: Api, store: Store, settings: Settings
) -> None:
    first = (await api.client.get(PAGE, headers=api.headers)).text
    await _ingest(store, settings)

    again = (await api.client.get(PAGE, headers=api.headers)).text

    assert again == first  # the cached page: a scraper cannot make every request read it all
