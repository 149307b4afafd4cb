"""Opaque ids and cursors: nothing the API hands out as an id or a cursor holds
personal data, in the clear or merely encoded; a cursor works only in its own
connection; ids round-trip through ``node(id)`` and survive a restart on the same secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.api.tokens import Tokens
from idgraph.config import Settings
from idgraph.errors import InvalidInput
from idgraph.secret import ServerSecret
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import Api, codes, nodes, open_api
from tests.api.opaque import assert_opaque, readings, tokens
from tests.events import event

# Personal data of the seeded graph: identifier values, keys, trait values.
EMAILS = [f"secret.person{n}@example.org" for n in range(3)]
PHONE = "+16502530000"
USERS = ["user-alpha-1", "user-alpha-2"]
DEVICE, ACCOUNT = "device-xyz-77", "shop:acct-4242"
TRAITS = {"name": "Secret Person", "city": "Reykjavik"}
PERSONAL = [
    *EMAILS,
    PHONE,
    *USERS,
    DEVICE,
    ACCOUNT,
    *TRAITS.values(),
    *(f"email:{e}" for e in EMAILS),
    f"phone:{PHONE}",
    f"device:{DEVICE}",
    f"account:{ACCOUNT}",
]


async def seed(graph: IdentityGraph) -> None:
    """One customer with every kind of node, traits, consents, interactions; and a link
    the rules refuse (a second user_id on the same email), so ``conflicts`` has pages."""
    await graph.ingest(
        [
            event(
                f"email:{EMAILS[0]}",
                f"phone:{PHONE}",
                f"user_id:{USERS[0]}",
                f"device:{DEVICE}",
                f"account:{ACCOUNT}",
                at="2026-03-01T10:00:00Z",
                traits=TRAITS,
                consent={"purpose": "marketing", "status": "granted"},
            ),
            *(
                event(
                    f"email:{EMAILS[0]}",
                    at=f"2026-03-0{n}T10:00:00Z",
                    interaction={"type": "purchase", "properties": {"note": EMAILS[1]}},
                )
                for n in range(2, 6)
            ),
        ]
    )
    for n, email in enumerate(EMAILS[1:], start=1):
        await graph.ingest([event(f"user_id:{USERS[1]}", f"email:{email}")])
        await graph.ingest([event(f"user_id:{USERS[0]}", f"email:{email}", event_id=f"x{n}")])


EVERYTHING = """
query($id: IdentifierInput!, $after: String) {
  resolve(identifier: $id) {
    id aliases splitFrom
    identifiers { edges { cursor node { id kind value customer { id } } } pageInfo { endCursor } }
    devices { edges { cursor node { id } } pageInfo { endCursor } }
    accounts { edges { cursor node { id } } pageInfo { endCursor } }
    traits { edges { cursor node { name value } } pageInfo { endCursor } }
    interactions(first: 2, after: $after) {
      edges { cursor node { id interactionId properties } }
      pageInfo { startCursor endCursor }
    }
  }
  conflicts(first: 1) {
    edges { cursor node { a b customerA { id } customerB { id } } }
    pageInfo { startCursor endCursor }
  }
  auditLog(first: 2) { edges { cursor node { customerId } } pageInfo { endCursor } }
}
"""


async def everything(api: Api, after: str | None = None) -> dict[str, Any]:
    variables = {"id": {"kind": "email", "value": EMAILS[0]}, "after": after}
    return await api.data(EVERYTHING, variables)


async def test_no_id_or_cursor_holds_personal_data_in_any_encoding(
    api: Api, graph: IdentityGraph
) -> None:
    await seed(graph)
    await api.data('{ resolve(identifier: {kind: "email", value: "nobody@example.org"}) { id } }')
    first = await everything(api)
    end = first["resolve"]["interactions"]["pageInfo"]["endCursor"]
    second = await everything(api, after=end)
    assert nodes(first["resolve"]["traits"])  # the data is there, in data fields
    assert first["conflicts"]["edges"][0]["node"]["a"] == f"email:{EMAILS[2]}"
    checked = assert_opaque([first, second], PERSONAL)
    assert checked >= 30
    # and what the ids are: prefixed tokens; customer ids random
    customer = first["resolve"]
    assert customer["id"].startswith("cus_")
    assert all(i["id"].startswith("idn_") for i in nodes(customer["identifiers"]))
    edges = customer["interactions"]["edges"]
    assert all(e["node"]["id"].startswith("int_") for e in edges)


def all_ids(tree: Any) -> Iterator[str]:
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name == "id":
                yield value
            else:
                yield from all_ids(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from all_ids(item)


NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Customer { size }
  ... on IdentityNode { kind value }
  ... on Interaction { interactionId } } }"""


async def test_every_id_handed_out_refetches_its_object(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    ids = set(all_ids(await everything(api)))
    assert {i[:4] for i in ids} == {"cus_", "idn_", "int_"}
    for node_id in ids:
        found = (await api.data(NODE, {"id": node_id}))["node"]
        assert found["id"] == node_id
    identity = {i["id"]: i for i in nodes((await everything(api))["resolve"]["identifiers"])}
    for node_id, identifier in identity.items():
        found = (await api.data(NODE, {"id": node_id}))["node"]
        assert (found["kind"], found["value"]) == (identifier["kind"], identifier["value"])


CUSTOMER_CONNECTIONS = ["interactions", "identifiers", "devices", "accounts", "traits"]


@pytest.mark.parametrize("connection", ["conflicts", "auditLog", *CUSTOMER_CONNECTIONS])
async def test_a_cursor_is_refused_by_every_other_connection(
    api: Api, graph: IdentityGraph, connection: str
) -> None:
    await seed(graph)
    await everything(api)  # audited: the audit log has pages now
    page = await everything(api)
    cursors = {
        "conflicts": page["conflicts"]["pageInfo"]["endCursor"],
        "auditLog": page["auditLog"]["pageInfo"]["endCursor"],
        **{name: page["resolve"][name]["pageInfo"]["endCursor"] for name in CUSTOMER_CONNECTIONS},
    }
    queries = {
        "conflicts": "query($after: String) { conflicts(after: $after) { edges { cursor } } }",
        "auditLog": "query($after: String) { auditLog(after: $after) { edges { cursor } } }",
        **{
            name: "query($after: String) { resolve(identifier: "
            f'{{kind: "email", value: "{EMAILS[0]}"}}) '
            f"{{ {name}(after: $after) {{ edges {{ cursor }} }} }} }}"
            for name in CUSTOMER_CONNECTIONS
        },
    }
    own = await api.query(queries[connection], {"after": cursors[connection]})
    assert "errors" not in own, own
    foreign = [c for name, c in cursors.items() if name != connection]
    node_id = nodes(page["resolve"]["identifiers"])[0]["id"]
    for cursor in [*foreign, node_id, node_id.removeprefix("idn_"), tamper(cursors[connection])]:
        refused = await api.query(queries[connection], {"after": cursor})
        assert codes(refused) == ["BAD_USER_INPUT"], refused
        message = refused["errors"][0]["message"]
        assert message == f"after: not a cursor of {connection} from this API"


def tamper(token: str) -> str:
    """The token with one character changed (the middle one: a whole byte of it)."""
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


async def test_a_tampered_or_forged_id_is_refused_never_decoded(
    api: Api, graph: IdentityGraph
) -> None:
    await seed(graph)
    page = await everything(api)
    node_id = nodes(page["resolve"]["identifiers"])[0]["id"]
    interaction_id = page["resolve"]["interactions"]["edges"][0]["node"]["id"]
    forged = "idn_" + base64.urlsafe_b64encode(f'["email:{EMAILS[0]}"]'.encode()).decode()
    swapped = "int_" + node_id.removeprefix("idn_")  # a node's token as an interaction's
    for bad in (tamper(node_id), tamper(interaction_id), forged, swapped, "idn_", "int_!!"):
        result = await api.query(NODE, {"id": bad})
        assert result["data"] == {"node": None}
        assert codes(result) == ["BAD_USER_INPUT"]
        assert result["errors"][0]["message"] == "id: not a valid id from this API"


async def test_ids_are_stable_across_apps_on_one_secret_and_differ_on_another(
    store: Store, settings: Settings, graph: IdentityGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(graph)
    runs = []
    secrets = ("first-secret-" + "a" * 32, "first-secret-" + "a" * 32, "other-" + "b" * 32)
    for n, secret in enumerate(secrets):
        monkeypatch.setenv("IDGRAPH_SECRET", secret)
        async for api in open_api(settings, store, f"admin-{n}"):
            runs.append(await everything(api))
    ids = [sorted(all_ids(run["resolve"])) for run in runs]
    assert ids[0] == ids[1]  # a restart, another worker process: the same ids
    assert set(ids[0]) & set(ids[2]) == {runs[0]["resolve"]["id"]}  # only the customer's
    # an id made on another secret is refused like a forged one
    monkeypatch.setenv("IDGRAPH_SECRET", "first-secret-" + "a" * 32)
    node_id = nodes(runs[2]["resolve"]["identifiers"])[0]["id"]
    async for api in open_api(settings, store, "admin-again"):
        assert codes(await api.query(NODE, {"id": node_id})) == ["BAD_USER_INPUT"]


async def test_the_secret_file_keeps_ids_across_restarts(
    store: Store, graph: IdentityGraph, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDGRAPH_SECRET")
    settings = Settings(secret_file=str(tmp_path / "ids.secret"))
    await seed(graph)
    runs = []
    for n in range(2):
        async for api in open_api(settings, store, f"admin-{n}"):
            runs.append(sorted(all_ids((await everything(api))["resolve"])))
    assert runs[0] == runs[1]
    assert (tmp_path / "ids.secret").stat().st_mode & 0o777 == 0o600


async def test_ids_do_not_depend_on_the_purpose(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    support = await everything(api)
    marketing = await everything(api.as_(api.headers["Authorization"][7:], "marketing"))
    assert sorted(all_ids(support["resolve"])) == sorted(all_ids(marketing["resolve"]))


identifier_values = st.text(min_size=5, max_size=80).filter(lambda v: "\x00" not in v)


@given(kind=st.sampled_from(["email", "phone", "cookie", "user_id"]), value=identifier_values)
def test_a_node_id_round_trips_and_reads_as_nothing(kind: str, value: str) -> None:
    key = f"{kind}:{value}"
    node_id = tokens.node_id(key)
    assert tokens.parse_id(node_id).key == key  # type: ignore[union-attr]
    assert all(value not in text for text in readings(node_id))
    other = Tokens.from_secret(ServerSecret(b"another-secret-" + b"x" * 32))
    assert other.node_id(key) != node_id


@given(parts=st.lists(st.text(max_size=40), min_size=1, max_size=3))
def test_a_cursor_opens_only_in_its_connection(parts: list[str]) -> None:
    cursor = tokens.cursors("conflicts").encode(parts)
    assert tokens.cursors("conflicts").decode(cursor, len(parts)) == parts
    with pytest.raises(InvalidInput):
        tokens.cursors("auditLog").decode(cursor, len(parts))
