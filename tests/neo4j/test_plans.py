"""The ingest path's and the API's statements as the server plans them (skipped without
``NEO4J_URI``).

Neo4j plans a statement once and keeps the plan while the store's statistics do not move
much, so the plan made on an empty store serves the bulk load that follows it: a plan that
scans there is quadratic later (see ``cypher.SNAPSHOT``). Each statement is planned here
on the empty test store, from a cold plan cache, and must find every row through an index
or a relationship of a row it already has.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, LiteralString

import pytest
from neo4j import AsyncGraphDatabase

from idgraph.store import cypher
from idgraph.store.neo4j import Neo4jStore
from tests.conftest import neo4j_settings
from tests.neo4j.helpers import neo4j_uri

pytestmark = pytest.mark.neo4j

AT = "2026-01-01T00:00:00+00:00"
KEY = "email:a@example.com"
NODE_ROW = {"key": KEY, "kind": "email", "value": "a@example.com", "attrs": {}}
LINK_ROW = {"a": KEY, "b": "phone:+15550100", "source": "s", "eventId": "e", "rule": None}
# Every statement a batch may run, with parameters of the types it is sent.
INGEST_PATH: dict[str, tuple[LiteralString, dict[str, Any]]] = {
    "SNAPSHOT": (cypher.SNAPSHOT, {"keys": [KEY], "eventIds": ["e"], "hashes": ["h"]}),
    "ERASED_AMONG": (cypher.ERASED_AMONG, {"hashes": ["h"]}),
    "LOCK_WRITERS": (cypher.LOCK_WRITERS, {}),
    "CREATE_CUSTOMERS": (cypher.CREATE_CUSTOMERS, {"rows": [{"id": "c", "at": AT}]}),
    **{
        name: (query, {"rows": [{"absorbed": "a", "survivor": "s", "at": AT}]})
        for name, query in [
            ("MOVE_MEMBERS", cypher.MOVE_MEMBERS),
            ("REPOINT_ALIASES", cypher.REPOINT_ALIASES),
            ("RETIRE_CUSTOMERS", cypher.RETIRE_CUSTOMERS),
        ]
    },
    **{
        name: (query, {"rows": [{**NODE_ROW, "customer": "c", "at": AT}]})
        for name, query in [
            ("CREATE_IDENTIFIERS", cypher.CREATE_IDENTIFIERS),
            ("CREATE_DEVICES", cypher.CREATE_DEVICES),
            ("CREATE_ACCOUNTS", cypher.CREATE_ACCOUNTS),
        ]
    },
    "UPDATE_CUSTOMERS": (cypher.UPDATE_CUSTOMERS, {"rows": [{"id": "c", "size": 1, "at": AT}]}),
    "CREATE_LINKS": (cypher.CREATE_LINKS, {"rows": [{**LINK_ROW, "at": AT, "lastAt": AT}]}),
    "MERGE_LINKS": (cypher.MERGE_LINKS, {"rows": [{**LINK_ROW, "at": AT, "lastAt": AT}]}),
    **{
        name: (query, {"rows": [{"key": KEY, "name": "city", "at": AT, "instant": None}]})
        for name, query in [
            ("CREATE_TRAITS", cypher.CREATE_TRAITS),
            ("MERGE_TRAITS", cypher.MERGE_TRAITS),
        ]
    },
    "CREATE_INTERACTIONS": (
        cypher.CREATE_INTERACTIONS,
        {"rows": [{"id": "i", "keys": [KEY], "at": AT}]},
    ),
    "CREATE_CONSENTS": (
        cypher.CREATE_CONSENTS,
        {"rows": [{"key": KEY, "purpose": "marketing", "at": AT, "recordedAt": AT}]},
    ),
    "CREATE_EVENTS": (cypher.CREATE_EVENTS, {"ids": ["e"], "at": AT}),
}
PAGE = {
    "pageSize": 20,
    "atFrom": datetime(2026, 1, 1, tzinfo=UTC),
    "atTo": datetime(2027, 1, 1, tzinfo=UTC),
    "beforeAt": None,
    "beforeId": None,
    "types": None,
}
# The reads of a resolve and of an export, by customer id or identity key.
READ_PATH: dict[str, tuple[LiteralString, dict[str, Any]]] = {
    "CUSTOMER_IDS_OF": (cypher.CUSTOMER_IDS_OF, {"keys": [KEY]}),
    "CUSTOMERS": (cypher.CUSTOMERS, {"ids": ["c"]}),
    "NODES_OF": (cypher.NODES_OF, {"ids": ["c"]}),
    "TRAITS_OF": (cypher.TRAITS_OF, {"ids": ["c"]}),
    "CONSENTS_OF": (cypher.CONSENTS_OF, {"ids": ["c"]}),
    "INTERACTIONS_OF": (cypher.INTERACTIONS_OF, {"ids": ["c"], **PAGE}),
    "PROFILES": (
        cypher.PROFILES,
        {"keys": [KEY], "nodes": True, "consents": True, "traits": True, **PAGE},
    ),
}
# Operators that read rows the statement was not led to: a whole label, index or type.
SCANS = {
    "AllNodesScan",
    "NodeByLabelScan",
    "NodeIndexScan",
    "NodeUniqueIndexScan",
    "DirectedRelationshipTypeScan",
    "UndirectedRelationshipTypeScan",
    "DirectedRelationshipIndexScan",
    "UndirectedRelationshipIndexScan",
    "DirectedAllRelationshipsScan",
    "UndirectedAllRelationshipsScan",
}
# The one scan wanted: a steward's few bans, read whole (``cypher.SNAPSHOT``).
BANS_SCAN = ("DirectedRelationshipTypeScan", ":BANNED]")


def _operators(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield plan["operatorType"].split("@")[0], plan.get("args", {}).get("Details", "")
    for child in plan.get("children", []):
        yield from _operators(child)


async def test_ingest_and_reads_plan_no_scan_on_an_empty_store(neo4j_store: Neo4jStore) -> None:
    statements = {**INGEST_PATH, **READ_PATH}
    settings = neo4j_settings()
    scans: dict[str, list[tuple[str, str]]] = {}
    async with (
        AsyncGraphDatabase.driver(neo4j_uri(), auth=(settings.user, settings.password)) as driver,
        driver.session(database=settings.database) as session,
    ):
        await (await session.run("CALL db.clearQueryCaches()")).consume()
        for name, (query, params) in statements.items():
            summary = await (await session.run("EXPLAIN " + query, params)).consume()
            assert summary.plan is not None
            scans[name] = [
                (operator, details)
                for operator, details in _operators(summary.plan)
                if operator in SCANS and not (operator == BANS_SCAN[0] and BANS_SCAN[1] in details)
            ]
    assert scans == {name: [] for name in statements}


def test_ingest_and_read_statements_keep_their_first_plan() -> None:
    """A bulk load keeps changing the statistics, and a server that plans a statement again
    each time spends the load's CPU (or a request's time) planning and compiling; these
    statements may keep their first plan only because the test above finds no scan in
    them."""
    replanned = [
        name
        for name, (query, _) in {**INGEST_PATH, **READ_PATH}.items()
        if not query.lstrip().startswith("CYPHER replan=skip")
    ]
    assert replanned == []
