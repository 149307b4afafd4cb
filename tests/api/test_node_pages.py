"""A customer's identifiers, devices, accounts and traits come in pages, like its
interactions: ``first``/``after`` walk the whole list in order, once, whatever the page
size; ``totalCount`` counts what the filters select of what the caller may see; the
cursors are opaque and hold no personal data."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from idgraph.api.relay import ListConnection
from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, codes, new_key, nodes
from tests.api.opaque import assert_opaque, tokens
from tests.events import event

EMAIL = "email:pat@example.org"
COOKIES = [f"cookie:ck-{n:02d}" for n in range(12)]
DEVICES = [f"device:dv-{n}" for n in range(3)]
TRAITS = {f"t{n}": n for n in range(7)}

PAGE = """query($id: IdentifierInput!, $first: Int, $after: String%s) {
  resolve(identifier: $id) {
    %s(first: $first, after: $after%s) {
      totalCount
      edges { cursor node { %s } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""
SELECT = {
    "identifiers": "kind value",
    "devices": "value",
    "accounts": "value",
    "traits": "name value",
}
WHO = {"id": {"kind": "email", "value": "pat@example.org"}}


async def seed(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(EMAIL, *COOKIES[:6], traits=TRAITS),
            event(EMAIL, *COOKIES[6:]),
            *(event(EMAIL, device) for device in DEVICES),
        ]
    )


def page_query(connection: str, by_kind: bool = False) -> str:
    declared, used = (", $kind: String", ", kind: $kind") if by_kind else ("", "")
    return PAGE % (declared, connection, used, SELECT[connection])


async def walk(
    caller: Api, connection: str, first: int, kind: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of ``connection``, following ``endCursor``: the items and the pages."""
    query = page_query(connection, kind is not None)
    variables = {**WHO, "first": first} | ({"kind": kind} if kind else {})
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        found = (await caller.data(query, {**variables, "after": after}))["resolve"][connection]
        pages.append(found)
        if not found["pageInfo"]["hasNextPage"]:
            break
        after = found["pageInfo"]["endCursor"]
        assert len(pages) < 20
    return [item for page in pages for item in nodes(page)], pages


async def test_pages_walk_each_list_once_in_order(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    identifiers, pages = await walk(api, "identifiers", 5)
    keys = [f"{i['kind']}:{i['value']}" for i in identifiers]
    assert keys == sorted([EMAIL, *COOKIES])
    assert [len(p["edges"]) for p in pages] == [5, 5, 3]
    assert {p["totalCount"] for p in pages} == {13}
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert all(p["pageInfo"]["endCursor"] == p["edges"][-1]["cursor"] for p in pages)
    devices, _ = await walk(api, "devices", 2)
    assert [d["value"] for d in devices] == ["dv-0", "dv-1", "dv-2"]
    traits, pages = await walk(api, "traits", 3)
    assert {t["name"]: t["value"] for t in traits} == TRAITS
    assert [t["name"] for t in traits] == sorted(TRAITS)
    assert {p["totalCount"] for p in pages} == {7}
    accounts, pages = await walk(api, "accounts", 3)
    assert accounts == []
    assert pages[0]["totalCount"] == 0
    assert pages[0]["pageInfo"]["endCursor"] is None
    # no cursor holds a key or a value, in any encoding
    assert_opaque(pages, [EMAIL, *COOKIES, *DEVICES, "pat@example.org"])


async def test_total_count_follows_the_kind_filter_and_the_callers_rights(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    emails, pages = await walk(api, "identifiers", 1, kind="email")
    assert [e["value"] for e in emails] == ["pat@example.org"]
    assert pages[0]["totalCount"] == 1
    cookies, pages = await walk(api, "identifiers", 100, kind="cookie")
    assert len(cookies) == pages[0]["totalCount"] == 12
    # a key with only `resolve` sees, and counts, the identifier it resolved by
    resolver = api.as_(await new_key(graph.store, settings, "edge", "resolver"))
    own, pages = await walk(resolver, "identifiers", 5)
    assert own == [{"kind": "email", "value": "pat@example.org"}]
    assert pages[0]["totalCount"] == 1
    # consent: under an opt-in purpose with no decision, nothing is shown nor counted
    marketing = api.as_(api.headers["Authorization"][7:], "marketing")
    for connection in ("identifiers", "devices", "traits"):
        hidden, pages = await walk(marketing, connection, 5)
        assert hidden == [], connection
        assert pages[0]["totalCount"] == 0, connection


async def test_a_bad_page_size_or_cursor_is_refused(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    query = page_query("devices")
    for first in (-1, 101):
        result = await api.query(query, {**WHO, "first": first})
        assert codes(result) == ["BAD_USER_INPUT"]
        assert result["data"] == {"resolve": None}  # the connection is non-null
    _, pages = await walk(api, "identifiers", 5)
    cursor = pages[0]["pageInfo"]["endCursor"]
    result = await api.query(query, {**WHO, "after": cursor})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["message"] == "after: not a cursor of devices from this API"


@given(
    keys=st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=30),
    size=st.integers(min_value=1, max_value=7),
)
def test_pages_of_any_list_join_up_to_the_sorted_list(keys: list[str], size: int) -> None:
    cursors = tokens.cursors("test")
    items = [(key, key) for key in reversed(keys)]  # in any order
    seen: list[str] = []
    after = None
    while True:
        found = ListConnection.of(items, size, after, cursors)
        assert found.total_count == len(keys)
        seen += [edge.node for edge in found.edges]
        if not found.page_info.has_next_page:
            break
        assert len(found.edges) == size
        after = found.page_info.end_cursor()
    assert seen == sorted(keys)
