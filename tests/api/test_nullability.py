"""Null only where a value can be missing: what a client's generated types see through
introspection. A customer the caller may see always has its size, times, lists and
counts; every connection always has its edges, page info and total."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

TYPES = """{ __schema { types { name kind fields {
  name type { kind ofType { kind ofType { kind ofType { kind } } } }
} } } }"""


async def types(api: Api) -> dict[str, list[dict[str, Any]]]:
    schema = (await api.data(TYPES))["__schema"]
    return {t["name"]: t["fields"] or [] for t in schema["types"] if t["kind"] == "OBJECT"}


def nullable(field: dict[str, Any]) -> bool:
    return field["type"]["kind"] != "NON_NULL"


def list_items_nullable(field: dict[str, Any]) -> bool:
    """For a (non-null) list, whether its items may be null."""
    inner = field["type"]["ofType"] or {}
    return inner.get("kind") == "LIST" and inner["ofType"]["kind"] != "NON_NULL"


async def test_a_customers_fields_are_non_null_but_split_from(api: Api) -> None:
    fields = (await types(api))["Customer"]
    assert len(fields) > 10
    assert [f["name"] for f in fields if nullable(f)] == ["splitFrom"]
    assert not any(list_items_nullable(f) for f in fields)


async def test_identity_nodes_have_a_creation_time(api: Api) -> None:
    found = await types(api)
    for name in ("Identifier", "Device", "Account"):
        [created] = [f for f in found[name] if f["name"] == "createdAt"]
        assert not nullable(created), name


async def test_connections_always_have_edges_page_info_and_a_total(api: Api) -> None:
    found = await types(api)
    connections = [name for name in found if name.endswith("Connection")]
    assert "InteractionConnection" in connections
    for name in connections:
        fields = {f["name"]: f for f in found[name]}
        for field in ("edges", "pageInfo", "totalCount"):
            assert not nullable(fields[field]), (name, field)
        assert not list_items_nullable(fields["edges"]), name
