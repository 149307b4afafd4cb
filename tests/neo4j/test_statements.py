"""The Neo4j adapter's statements, run against a recording stand-in for the driver: every
statement gets exactly the parameters it names, and rows are built from the domain's
plans without error. (What the server makes of them is tested in test_server.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idgraph.config import Settings
from idgraph.domain.access import ApiKey, Role
from idgraph.service import IdentityGraph
from idgraph.store import cypher
from idgraph.store.neo4j import Neo4jStore
from tests.events import event

AT = datetime(2026, 3, 1, tzinfo=UTC)


class FakeDateTime:
    """What the driver returns for a stored datetime."""

    def to_native(self) -> datetime:
        return AT


def canned(query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Just enough answers for an unlink to find a two-node customer."""
    customer = {
        "id": "cus_1",
        "createdAt": FakeDateTime(),
        "updatedAt": FakeDateTime(),
        "size": 2,
        "kindCounts": '{"cookie": 1, "email": 1}',
        "splitFrom": None,
        "aliases": [],
    }
    node = {"kind": "email", "createdAt": FakeDateTime()}
    answers: dict[str, list[dict[str, Any]]] = {
        cypher.ENSURE_SALT: [{"salt": "salt"}],
        cypher.DELETE_SOME: [{"deleted": 0}],
        cypher.CUSTOMER_IDS_OF: [{"key": k, "id": "cus_1"} for k in params.get("keys", [])],
        cypher.CUSTOMERS: [{**customer, "requested": "cus_1"}],
        cypher.COMPONENT_NODES: [
            {"node": {**node, "key": "email:a@x.com", "value": "a@x.com"}},
            {"node": {**node, "key": "cookie:c1", "value": "c1", "kind": "cookie"}},
        ],
        cypher.COMPONENT_LINKS: [
            {
                "a": "cookie:c1",
                "b": "email:a@x.com",
                "source": "web",
                "at": FakeDateTime(),
                "eventId": "e1",
                "accepted": True,
                "rule": None,
            }
        ],
    }
    if query == cypher.SNAPSHOT_CUSTOMERS and "phone:+16502530000" in params["keys"]:
        return [
            {**customer, "key": "phone:+16502530000", "id": "cus_old"},
            {**customer, "key": "email:b@x.com", "id": "cus_new", "size": 1},
        ]
    if query in (cypher.FORGET_INTERACTIONS, cypher.FORGET_TRAITS, cypher.FORGET_CONSENTS):
        return [{"deleted": 1}]
    if query in (cypher.FORGET_LINKS, cypher.FORGET_ALIASES):
        return [{"deleted": 0}]
    answers[cypher.FORGET_MEMBERS] = [{"key": "email:a@x.com", "kind": "email"}]
    answers[cypher.RESERVE_AUDIT_SEQ] = [{"last": 7}]
    answers[cypher.REVOKE_API_KEY] = [{"found": 1}]
    if query in (cypher.COUNT_INTERACTIONS, *cypher.COUNTS.values()):
        return [{"total": 0}]
    return answers.get(query, [])


class FakeResult:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def data(self) -> list[dict[str, Any]]:
        return self.rows

    async def consume(self) -> None:
        return None


class FakeTransaction:
    def __init__(self, log: list[tuple[str, dict[str, Any]]]) -> None:
        self.log = log
        self.queries: list[str] = []

    async def run(self, query: str, parameters: dict[str, Any]) -> FakeResult:
        self.log.append((query, parameters))
        self.queries.append(query)
        return FakeResult(canned(query, parameters))


class FakeSession:
    def __init__(self, log: list[tuple[str, dict[str, Any]]], transactions: list[Any]) -> None:
        self.log = log
        self.transactions = transactions

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute_write(self, work: Any) -> Any:
        tx = FakeTransaction(self.log)
        self.transactions.append(tx.queries)
        return await work(tx)

    async def execute_read(self, work: Any) -> Any:
        return await work(FakeTransaction(self.log))


class FakeDriver:
    execute_query_bookmark_manager = object()

    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.transactions: list[list[str]] = []
        self.databases: set[str] = set()

    def session(self, *, database: str, bookmark_manager: object) -> FakeSession:
        assert bookmark_manager is self.execute_query_bookmark_manager
        self.databases.add(database)
        return FakeSession(self.log, self.transactions)

    async def close(self) -> None:
        return None


async def test_statements_get_exactly_their_parameters(tmp_path: Path) -> None:
    driver = FakeDriver()
    store = Neo4jStore(driver, "bolt://fake:7687", "idgraph")
    await store.init_schema()
    await store.clear()
    graph = IdentityGraph(store, Settings())
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1",
                "account:shop:42",
                traits={"name": "Ann"},
                interaction={"type": "login", "channel": "web"},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event("device:d1", "cookie:c1", device={"id": "d1", "os": "ios"}),
        ]
    )
    merged = await graph.ingest([event("phone:+16502530000", "email:b@x.com")])
    assert merged.merges == 1
    await graph.unlink("email:a@x.com", "cookie:c1", ban=True)
    await store.customers(["cus_1"])
    await store.nodes_of(["cus_1"])
    await store.traits_of(["cus_1"])
    await store.consents_of(["cus_1"])
    await store.interactions_of("cus_1", limit=5, before=(AT, "x"), types=["login"], since=AT)
    await store.count_interactions("cus_1")
    await store.links_of(["cookie:c1"])
    await store.rejected_links(limit=5, before=(AT, "a", "b"))
    await graph.check()
    await store.counts()
    report = await store.forget("cus_1", AT)
    assert report.identity_nodes == {"email": 1}
    await store.put_key(ApiKey("k", Role.READER, ("support",), "hash", AT))
    await store.api_keys()
    await store.key_by_hash("hash")
    await store.revoke_key("k", AT)
    await graph.audit("k", "support", "read_profile", ["cus_1", None])
    await store.audit_log(customer_id="cus_1", limit=5, before=3)

    assert driver.databases == {"idgraph"}, "every session names the database"
    ran = {query for query, _ in driver.log}
    for query, params in driver.log:
        assert set(re.findall(r"\$(\w+)", query)) == set(params), query
    expected = {
        cypher.LOCK_WRITERS,
        cypher.CREATE_CUSTOMERS,
        cypher.CREATE_IDENTIFIERS,
        cypher.CREATE_DEVICES,
        cypher.CREATE_ACCOUNTS,
        cypher.UPDATE_CUSTOMERS,
        cypher.MERGE_LINKS,
        cypher.MERGE_TRAITS,
        cypher.CREATE_INTERACTIONS,
        cypher.CREATE_CONSENTS,
        cypher.CREATE_EVENTS,
        cypher.REJECT_LINKS,
        cypher.MERGE_BANS,
        cypher.CREATE_SPLIT_PARTS,
        cypher.MOVE_MEMBERS,
        cypher.REPOINT_ALIASES,
        cypher.RETIRE_CUSTOMERS,
        cypher.FORGET_INTERACTIONS,
        cypher.RECORD_ERASED,
        cypher.FORGET_NODES,
        cypher.FORGET_CUSTOMER,
        cypher.CREATE_API_KEY,
        cypher.REVOKE_API_KEY,
    }
    assert expected <= ran
    assert cypher.CREATE_AUDIT_ENTRIES in ran
    for queries in driver.transactions:
        if expected & set(queries):
            assert queries[0] == cypher.LOCK_WRITERS, "a data write locks the writers first"
