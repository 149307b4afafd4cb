"""References are objects: a link's ends, a path's hops, the node a trait, a consent
decision or an interaction belongs to are identity nodes a client can select fields
of (and refetch with ``node(id:)``), null where consent hides them, exactly like the
deprecated key strings beside them."""

from __future__ import annotations

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, new_key, nodes
from tests.events import event

NODE = "{ __typename kind value id }"

PROFILE = f"""query($id: IdentifierInput!) {{
  resolve(identifier: $id) {{
    traits {{ edges {{ node {{ name identityNode node {NODE} }} }} }}
    consents {{ purpose identityNode node {NODE} }}
    interactions {{ edges {{ node {{ identityNodes nodes {NODE} }} }} }}
  }}
}}"""

CONFLICTS = f"{{ conflicts {{ edges {{ node {{ a b nodeA {NODE} nodeB {NODE} }} }} }} }}"

EXPLAIN = f"""query($a: IdentifierInput!, $b: IdentifierInput!) {{
  explainLink(a: $a, b: $b) {{ path {{ from to fromNode {NODE} toNode {NODE} }} }}
}}"""


def ident(key: str) -> dict[str, str]:
    kind, _, value = key.partition(":")
    return {"kind": kind, "value": value}


async def test_profile_parts_point_at_their_identity_nodes(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "device:d1",
                traits={"city": "Oslo"},
                consent={"purpose": "marketing", "status": "granted"},
                interaction={"type": "purchase"},
            )
        ]
    )
    profile = (await api.data(PROFILE, {"id": ident("email:a@x.com")}))["resolve"]
    [trait] = nodes(profile["traits"])
    [consent] = profile["consents"]
    [edge] = profile["interactions"]["edges"]
    for key, node in [
        (trait["identityNode"], trait["node"]),
        (consent["identityNode"], consent["node"]),
        (edge["node"]["identityNodes"][0], edge["node"]["nodes"][0]),
    ]:
        assert key == "email:a@x.com"
        assert (node["__typename"], node["kind"], node["value"]) == (
            "Identifier",
            "email",
            "a@x.com",
        )
        refetched = await api.data("query($id: ID!) { node(id: $id) { id } }", {"id": node["id"]})
        assert refetched == {"node": {"id": node["id"]}}


async def test_link_ends_and_path_hops_are_nodes(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("user_id:u1", "email:a@x.com", "device:d1")])
    await graph.ingest([event("user_id:u2", "email:a@x.com")])
    [conflict] = [e["node"] for e in (await api.data(CONFLICTS))["conflicts"]["edges"]]
    assert (conflict["nodeA"]["value"], conflict["nodeB"]["value"]) == ("a@x.com", "u2")
    assert (conflict["a"], conflict["b"]) == ("email:a@x.com", "user_id:u2")
    path = (await api.data(EXPLAIN, {"a": ident("user_id:u1"), "b": ident("device:d1")}))[
        "explainLink"
    ]["path"]
    assert [
        (h["from"], h["fromNode"]["__typename"], h["to"], h["toNode"]["__typename"]) for h in path
    ] == [("user_id:u1", "Identifier", "device:d1", "Device")]


async def test_hidden_ends_are_null_like_their_keys(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("user_id:u1", "email:a@x.com")])
    await graph.ingest([event("user_id:u2", "email:a@x.com")])
    # marketing is opt-in and nobody granted it: every identity node is hidden
    steward = api.as_(await new_key(graph.store, settings, "ops", "steward"), "marketing")
    [conflict] = [e["node"] for e in (await steward.data(CONFLICTS))["conflicts"]["edges"]]
    assert conflict == {"a": None, "b": None, "nodeA": None, "nodeB": None}


UNLINK = f"""mutation($a: IdentifierInput!, $b: IdentifierInput!) {{
  unlink(a: $a, b: $b) {{ removedLinks {{ a b nodeA {NODE} nodeB {NODE} }} redacted }}
}}"""

EXPLAIN_ENDS = f"""query($a: IdentifierInput!, $b: IdentifierInput!) {{
  explainLink(a: $a, b: $b) {{ a b verdict nodeA {NODE} nodeB {NODE} }}
}}"""


async def test_the_ends_of_an_explanation_are_nodes(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", "device:d1")])
    explained = (
        await api.data(EXPLAIN_ENDS, {"a": ident("email:A@x.com"), "b": ident("device:d1")})
    )["explainLink"]
    assert (explained["a"], explained["b"]) == ("email:a@x.com", "device:d1")
    assert (explained["nodeA"]["__typename"], explained["nodeA"]["value"]) == (
        "Identifier",
        "a@x.com",
    )
    assert (explained["nodeB"]["__typename"], explained["nodeB"]["value"]) == ("Device", "d1")
    unknown = (
        await api.data(EXPLAIN_ENDS, {"a": ident("email:a@x.com"), "b": ident("cookie:none")})
    )["explainLink"]
    assert unknown["verdict"] == "UNKNOWN_IDENTIFIER"
    assert unknown["nodeA"]["value"] == "a@x.com"
    assert unknown["nodeB"] is None


async def test_removed_links_point_at_their_ends_null_where_consent_hides_them(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    # a chain cookie — email — phone: cutting cookie from phone removes one link at the
    # email; under marketing only the cookie and the phone are granted
    granted = {"purpose": "marketing", "status": "granted"}
    denied = {"purpose": "marketing", "status": "denied"}
    await graph.ingest(
        [
            event("cookie:c1", "email:a@x.com", at="2026-03-01T00:00:00Z"),
            event("email:a@x.com", "phone:+16502530000", at="2026-03-02T00:00:00Z"),
            event("email:a@x.com", at="2026-03-03T00:00:00Z", consent=denied),
            event("cookie:c1", at="2026-03-04T00:00:00Z", consent=granted),
            event("phone:+16502530000", at="2026-03-05T00:00:00Z", consent=granted),
        ]
    )
    steward = api.as_(await new_key(graph.store, settings, "ops", "steward"), "marketing")
    ends = {"a": ident("cookie:c1"), "b": ident("phone:+16502530000")}
    payload = (await steward.data(UNLINK, ends))["unlink"]
    [removed] = payload["removedLinks"]
    assert payload["redacted"] == 1
    assert len({removed["a"], removed["b"]} - {None}) == 1
    for key, node in ((removed["a"], removed["nodeA"]), (removed["b"], removed["nodeB"])):
        if key is None:
            assert node is None
        else:
            assert f"{node['kind']}:{node['value']}" == key
            assert node["id"]
    assert "a@x.com" not in str(payload)
