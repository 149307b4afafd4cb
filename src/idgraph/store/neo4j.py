"""The Neo4j store: the same port as SQLite, over the official async driver.

The graph's shape and every statement are in :mod:`idgraph.store.cypher`; this module
only binds parameters and maps rows. It is the only module that imports the driver.

Writes. ``write_batch`` and ``rewrite_customer`` each run read, plan and apply inside one
managed transaction (``session.execute_write``), so the driver retries transient errors
(the plan function may then run again, as the port allows). A batch costs one statement
for its snapshot and one ``UNWIND $rows`` statement per kind of change. Where a batch
carries thousands of times, they travel as ISO text in and epoch integers out, not as the
driver's slow DateTime objects (:func:`_iso`, :func:`_from_epoch`).

Concurrent writers. Every write transaction *first* sets a property on the single
``(:IdgraphLock {name: 'writer'})`` node, which takes that node's exclusive lock until
commit. Writers from every process therefore run one after the other, and each one's
snapshot (read after the lock, under read-committed isolation) already sees every
earlier writer's commit: no lost merge, no duplicate node, no customer split in two.
This trades write parallelism for correctness that is easy to reason about; the cost is
small because a whole batch is one transaction. Reads take no lock.

Merges re-point the absorbed customer's ``BELONGS_TO`` relationships to the survivor
(whichever side is larger): the rules cap a customer's size (1,000 nodes by default), so
a merge moves at most that many relationships, and the survivor keeps its node.

Super nodes: no query expands from a ``Purpose`` or follows ``LINKED`` transitively;
they start from indexed keys or ids and expand one customer (bounded by the rules).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Container,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, LiteralString, TypeVar, cast

from neo4j import (
    READ_ACCESS,
    WRITE_ACCESS,
    AsyncGraphDatabase,
    AsyncManagedTransaction,
    AsyncResult,
    AsyncTransaction,
    NotificationDisabledClassification,
    Record,
)
from neo4j.exceptions import AuthError, DriverError, Neo4jError, ServiceUnavailable, SessionExpired

from idgraph.config import Neo4jSettings
from idgraph.domain.access import ApiKey, AuditEntry, ErasureReport, Role
from idgraph.domain.health import EXPIRED, SUPER_NODES, ConsentCoverage, HealthStats, SuperNode
from idgraph.domain.model import (
    AttachmentRepair,
    Component,
    ConsentRecord,
    ConsentStatus,
    CustomerRecord,
    CustomerState,
    CustomerUpdate,
    InteractionView,
    Link,
    NodeRecord,
    NodeType,
    ResolutionPlan,
    SharedAttachment,
    Snapshot,
    SplitPlan,
    TraitRecord,
    TraitReport,
)
from idgraph.domain.retention import Policy, PurgeStep
from idgraph.domain.segment import SavedSegment, instant
from idgraph.errors import (
    ConfigError,
    IdgraphError,
    InvalidInput,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from idgraph.store import cypher, neo4j_retention
from idgraph.store.encoding import counts_from_text, counts_to_text
from idgraph.store.erasure import (
    KEY_CHECK,
    LEGACY_SALT,
    UNKEYED_SALT,
    ErasureHasher,
    ErasureRecord,
)
from idgraph.store.neo4j_segments import compile_segment
from idgraph.store.port import (
    ImportBatch,
    InteractionPage,
    Planner,
    Profile,
    ProfileRead,
    SegmentPage,
    SegmentQuery,
    SegmentSort,
    Splitter,
    SubjectChooser,
)

T = TypeVar("T")

# Pauses before the retries of an auto-commit statement that failed in a way a retry may
# mend (seconds).
RETRY_PAUSES = (0.1, 0.5, 2.0)
Row = dict[str, Any]
Work = Callable[[AsyncManagedTransaction], Awaitable[T]]

CLEAR_BATCH = 10_000
BACKFILL_BATCH = 1_000  # identities per transaction of a migration (with all they did)
INDEX_WAIT_SECONDS = 3_600  # for a new index over a large store to fill
# The shape of the graph this idgraph writes, kept in the IdgraphMeta entry
# ``schema_version`` (a store without one was written before versions were kept: 1).
# A newer idgraph migrates an older store when it opens it (:meth:`Neo4jStore._migrate`);
# an older idgraph refuses a newer store. Raise it with every change an older idgraph
# would misread, and add the step from the previous version to ``_migrate``.
SCHEMA_VERSION = 3
SCHEMA_VERSION_META = "schema_version"
# How version 1 recorded that its trait reports had their ``instant``.
TRAIT_INSTANTS_V1 = "trait_instants"
# The IdgraphMeta entry of a store being restored (:meth:`Neo4jStore.import_all`): written
# first and deleted last, so a store where a restore did not complete refuses to open.
RESTORE_INCOMPLETE = "restore_incomplete"
# JSON text that may hold an RFC 3339 timestamp (a string starting with a year).
TIMESTAMP_TEXT = r'"\d{4}-.*'
# Node properties that are not descriptive attributes (``NodeRecord.attrs``).
NODE_FIELDS = frozenset({"key", "kind", "value", "createdAt"})
CREATE_NODES: dict[NodeType, LiteralString] = {
    NodeType.IDENTIFIER: cypher.CREATE_IDENTIFIERS,
    NodeType.DEVICE: cypher.CREATE_DEVICES,
    NodeType.ACCOUNT: cypher.CREATE_ACCOUNTS,
}


async def _rows(tx: AsyncManagedTransaction, query: LiteralString, **params: Any) -> list[Row]:
    return await _plain_rows(await tx.run(query, params))


async def _plain_rows(result: AsyncResult) -> list[Row]:
    """Rows as plain dicts of the values as the driver decoded them. No statement here
    returns nodes or relationships, and ``Result.data()``'s recursive export of them
    costs more than the rest of a profile read."""
    return [dict(record.items()) async for record in result]


async def _record(tx: AsyncManagedTransaction, query: LiteralString, **params: Any) -> Record:
    """The one record a statement returns, its values as they came: ``data()`` would copy
    every nested list, thousands in a batch's snapshot."""
    result = await tx.run(query, params)
    return await result.single(strict=True)


async def _run(tx: AsyncManagedTransaction, query: LiteralString, **params: Any) -> None:
    result = await tx.run(query, params)
    await result.consume()


# The widest times a page's range in the ``performed_node_at`` index can have (PROFILES).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def _page_params(page: InteractionPage) -> dict[str, Any]:
    """The parameters of PROFILES' and INTERACTIONS_OF's page of interactions."""
    return {
        "pageSize": page.limit,
        "atFrom": page.since or EARLIEST,
        "atTo": page.before[0] if page.before else LATEST,
        "beforeAt": page.before[0] if page.before else None,
        "beforeId": page.before[1] if page.before else None,
        "types": list(page.types) if page.types else None,
    }


def _dt(value: Any) -> datetime:
    """A time a statement returned as a UTC ``datetime``: either a driver
    ``neo4j.time.DateTime`` or, from statements on the request path, the cheaper
    ``[t.epochSeconds, t.nanosecond]`` (see :func:`_from_epoch`)."""
    if isinstance(value, list):
        return _from_epoch(value)
    return value.to_native().astimezone(UTC)


def _from_epoch(seconds_nanos: list[int]) -> datetime:
    """``[t.epochSeconds, t.nanosecond]`` of a Cypher DateTime ``t`` as a UTC ``datetime``:
    the driver builds its own DateTime objects for every time it receives, several times
    slower than these two integers."""
    seconds, nanos = seconds_nanos
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)


def _iso(value: datetime) -> str:
    """A time for a ``$rows`` parameter: the statement turns the text back into a DateTime
    (``datetime(row.at)``). The driver packs a ``datetime`` 6-16 times slower than text,
    and a batch sends several times per event."""
    return value.isoformat()


def _node(props: Row, customer_id: str) -> NodeRecord:
    attrs = {k: v for k, v in props.items() if k not in NODE_FIELDS}
    return NodeRecord(
        props["key"], props["kind"], props["value"], customer_id, attrs, _dt(props["createdAt"])
    )


def _link(row: Row) -> Link:
    return Link(
        row["a"],
        row["b"],
        row["source"],
        _dt(row["at"]),
        row["eventId"],
        bool(row["accepted"]),
        row["rule"],
    )


def _customer(row: Row) -> CustomerRecord:
    return CustomerRecord(
        row["id"],
        _dt(row["createdAt"]),
        _dt(row["updatedAt"]),
        row["size"],
        counts_from_text(row["kindCounts"]),
        tuple(sorted(row["aliases"])),
        row["splitFrom"],
    )


def _by_customer(rows: list[Row]) -> Iterator[tuple[str, list[Row]]]:
    """Rows of a per-customer read, grouped by their ``customer`` column."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r["customer"], []).append(r)
    return iter(groups.items())


def _nodes(props: list[Row], customer_id: str) -> list[NodeRecord]:
    """A customer's identity nodes, ordered by key."""
    return sorted((_node(p, customer_id) for p in props), key=lambda n: n.key)


def _traits(rows: list[Row]) -> list[TraitRecord]:
    """A customer's traits, ordered by time, then key."""
    traits = [
        TraitRecord(
            r["key"], r["name"], json.loads(r["value"]), r["source"], _dt(r["at"]), r["eventId"]
        )
        for r in rows
    ]
    return sorted(traits, key=lambda t: (t.at, t.key))


def _consents(rows: list[Row]) -> list[ConsentRecord]:
    """A customer's consent decisions, in the order they were recorded."""
    consents = [
        ConsentRecord(
            r["key"],
            r["purpose"],
            ConsentStatus(r["status"]),
            _dt(r["at"]),
            _dt(r["expiresAt"]) if r["expiresAt"] is not None else None,
            r["source"],
            r["eventId"],
            _dt(r["recordedAt"]),
            r["seq"],
        )
        for r in rows
    ]
    return sorted(consents, key=lambda c: (c.recorded_at, c.seq))


def _interactions(rows: list[Row]) -> list[InteractionView]:
    """A page of a customer's interactions, newest first."""
    views = [
        InteractionView(
            r["id"],
            r["type"],
            r["channel"],
            _dt(r["at"]),
            r["source"],
            json.loads(r["properties"]),
            r["eventId"],
            tuple(sorted(r["keys"])),
        )
        for r in rows
    ]
    return sorted(views, key=lambda i: (i.at, i.id), reverse=True)


def _node_row(key: str, kind: str, value: str, attrs: Any, customer: str, at: datetime) -> Row:
    return {
        "key": key,
        "kind": kind,
        "value": value,
        "attrs": dict(attrs),
        "customer": customer,
        "at": _iso(at),
    }


class Neo4jStore:
    """A :class:`~idgraph.store.port.Store` in a Neo4j 5 database (Community is enough)."""

    def __init__(self, driver: Any, url: str, database: str, erasure_key: bytes) -> None:
        self._driver = driver
        self.url = url
        self.database = database
        self._erasure = ErasureHasher(erasure_key)
        # Whether this store may hold erased keys; false only while every snapshot read
        # under the writers' lock found none (``_snapshot``).
        self._any_erased = True

    @classmethod
    async def open(
        cls,
        url: str,
        settings: Neo4jSettings,
        *,
        erasure_key: bytes,
        clear: bool = False,
        restoring: bool = False,
    ) -> Neo4jStore:
        """Connect, check the credentials and database, and create or migrate the schema.
        ``erasure_key`` keys the erasure record (:mod:`idgraph.store.erasure`); it is
        never written to the database. ``clear`` wipes the database first (see
        :meth:`clear`), so a database erased under another key can be replaced. A store
        where a restore did not complete is refused unless ``restoring`` (to restore
        again)."""
        try:
            driver = AsyncGraphDatabase.driver(
                url,
                auth=(settings.user, settings.password),
                # A fresh database lacks the labels and relationship types that only some
                # writes create (BANNED, Erased, ...); the server would flag every
                # statement naming them, and the driver log each flag as a warning.
                notifications_disabled_classifications=[
                    NotificationDisabledClassification.UNRECOGNIZED
                ],
            )
        except (DriverError, ValueError) as exc:
            raise StoreUnavailable(f"cannot open Neo4j store at {url}: {exc}") from exc
        store = cls(driver, url, settings.database, erasure_key)
        try:
            with store._translated("connect"):
                await driver.verify_connectivity()
            if clear:
                await store._delete_all()
            await store.init_schema()
            if not restoring:
                await store._refuse_incomplete_restore()
        except BaseException:
            await driver.close()
            raise
        return store

    async def _refuse_incomplete_restore(self) -> None:
        started = await self.meta(RESTORE_INCOMPLETE)
        if started is not None:
            raise StoreError(
                f"the Neo4j store at {self.url} holds an incomplete restore (started "
                f"{started}), which may be part of a backup: run "
                "`idgraph restore --force FILE` again; until a restore completes, idgraph "
                "opens this store for nothing else"
            )

    async def close(self) -> None:
        await self._driver.close()

    def bulk_writes(self) -> AbstractContextManager[None]:
        """Each batch's commit is a request to the server, awaited as ever."""
        return nullcontext()

    async def ping(self) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(tx, cypher.PING)

        try:
            await self._read(work)
        except StoreError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def init_schema(self) -> tuple[str, ...]:
        """Check the stored schema version (refusing a newer store), create the
        constraints and indexes (idempotent) and the writers' lock node, and migrate a
        store an earlier idgraph wrote. Runs at every start; ``idgraph init-schema`` runs
        it on demand. Returns the schema statements."""
        version = await self._read(self._stored_version)
        # Schema changes cannot share a transaction with data writes.
        if version < 2:
            for statement in cypher.RETIRED_SCHEMA:
                await self._write(partial(_run, query=statement))
        for statement in cypher.SCHEMA:
            await self._write(partial(_run, query=statement))
        if version < SCHEMA_VERSION:
            # Reads demand the indexes (USING INDEX), and one this version added fills in
            # the background: over a large store, for minutes.
            await self._write(partial(_run, query=cypher.AWAIT_INDEXES, seconds=INDEX_WAIT_SECONDS))
        if version < 3:
            await self._backfill_performed()
        await self._bootstrap()
        return cypher.SCHEMA

    async def _stored_version(self, tx: AsyncManagedTransaction) -> int:
        rows = await _rows(tx, cypher.META_VALUE, name=SCHEMA_VERSION_META)
        version = int(rows[0]["value"]) if rows else 1
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the Neo4j store at {self.url} has schema version {version}, and this "
                f"idgraph knows versions up to {SCHEMA_VERSION}: a newer idgraph wrote it; "
                "run that version (or a later one)"
            )
        return version

    async def _bootstrap(self) -> None:
        async def work(tx: AsyncManagedTransaction) -> str | None:
            await _run(tx, cypher.LOCK_WRITERS)
            version = await self._stored_version(tx)  # again, now that writers wait
            recorded = await _rows(tx, cypher.META_VALUE, name=KEY_CHECK)
            self._erasure.verify(
                recorded[0]["value"] if recorded else None,
                has_record=bool(await _rows(tx, cypher.ANY_ERASED)),
                store=self.url,
            )
            await _run(tx, cypher.SET_META, name=KEY_CHECK, value=self._erasure.key_check)
            await self._migrate(tx, version)
            rows = await _rows(tx, cypher.META_VALUE, name=LEGACY_SALT)
            return str(rows[0]["value"]) if rows else None

        self._erasure.legacy_salt = await self._write(work)

    async def _migrate(self, tx: AsyncManagedTransaction, version: int) -> None:
        """Bring a store at schema ``version`` to :data:`SCHEMA_VERSION`, step by step, in
        the transaction that opens it (the constraints changed before, in
        :meth:`init_schema`). Each step runs once: the version is recorded with it."""
        if version < 2:
            # 1 → 2: erasure hashes keyed, every timestamp trait with its instant.
            await self._rekey_erasures(tx)
            await self._backfill_instants(tx)
            await _run(tx, cypher.DELETE_META, name=TRAIT_INSTANTS_V1)
        if version < 3:
            # 2 → 3: what writers added since init_schema's backfill.
            await _run(tx, cypher.BACKFILL_PERFORMED_REST)
        await _run(tx, cypher.SET_META, name=SCHEMA_VERSION_META, value=SCHEMA_VERSION)

    async def _backfill_performed(self) -> None:
        """Schema 2 → 3, before the locked migration: every PERFORMED gets the index's
        properties, in batches of identities, one transaction each."""

        async def batch(tx: AsyncManagedTransaction, after: str) -> str | None:
            rows = await _rows(
                tx, cypher.BACKFILL_PERFORMED_AFTER, after=after, pageSize=BACKFILL_BATCH
            )
            return rows[0]["last"] if rows else None

        after: str | None = ""
        while after is not None:
            after = await self._write(partial(batch, after=after))

    async def _rekey_erasures(self, tx: AsyncManagedTransaction) -> None:
        """A store erased before the HMAC keeps its salt in an ``IdgraphMeta`` node: key
        its hashes and keep the salt as the legacy salt (see :mod:`idgraph.store.erasure`).
        The old values stay in Neo4j's store files and transaction logs until the server
        reuses or prunes them (README, Neo4j)."""
        salt = await _rows(tx, cypher.META_VALUE, name=UNKEYED_SALT)
        if not salt:
            return
        rows = [
            {"old": r["hash"], "new": self._erasure.rekey(r["hash"])}
            for r in await _rows(tx, cypher.ALL_ERASED)
        ]
        if rows:
            await _run(tx, cypher.REKEY_ERASED, rows=rows)
            await _run(tx, cypher.SET_META, name=LEGACY_SALT, value=salt[0]["value"])
        await _run(tx, cypher.DELETE_META, name=UNKEYED_SALT)

    async def _backfill_instants(self, tx: AsyncManagedTransaction) -> None:
        """Give every trait report whose value is an RFC 3339 timestamp its ``instant``
        (segments compare those): reports written before segments lack it."""
        rows = [
            {"id": r["id"], "instant": _iso(at)}
            for r in await _rows(tx, cypher.TIMESTAMP_TRAITS, shape=TIMESTAMP_TEXT)
            if (at := instant(json.loads(r["value"]))) is not None
        ]
        if rows:
            await _run(tx, cypher.SET_TRAIT_INSTANTS, rows=rows)

    async def clear(self) -> None:
        """Delete every node and relationship in the database, in batches, but the
        ``IdgraphMeta`` entries other than the legacy salt, as SQLite keeps its ``meta``
        table: the schema version, the erasure key's fingerprint and the keyring an
        encrypted store is sealed with stay (a restore with ``--force`` must not leave
        an encrypted store that refuses to open as unencrypted)."""
        await self._delete_all(cypher.DELETE_SOME_DATA)
        await self._write(partial(_run, query=cypher.DELETE_META, name=LEGACY_SALT))
        await self._bootstrap()

    async def _delete_all(self, query: LiteralString = cypher.DELETE_SOME) -> None:
        async def work(tx: AsyncManagedTransaction) -> int:
            rows = await _rows(tx, query, pageSize=CLEAR_BATCH)
            return int(rows[0]["deleted"])

        while await self._write(work):
            pass

    # ---- transactions --------------------------------------------------------------

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Driver errors to :mod:`idgraph.errors`; idgraph's own errors pass through."""
        try:
            yield
        except (ServiceUnavailable, SessionExpired) as exc:
            raise StoreUnavailable(f"Neo4j at {self.url} is unreachable: {exc}") from exc
        except AuthError as exc:
            raise StoreUnavailable(f"Neo4j at {self.url} refused the credentials: {exc}") from exc
        except Neo4jError as exc:
            if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
                raise StoreUnavailable(
                    f"Neo4j at {self.url} has no database {self.database!r}"
                ) from exc
            raise StoreError(f"Neo4j at {self.url}: {action} failed: {exc}") from exc
        except DriverError as exc:
            raise StoreError(f"Neo4j at {self.url}: {action} failed: {exc}") from exc

    def _session(self, **options: Any) -> Any:
        # The driver's shared bookmark manager makes every session see earlier commits
        # of this process even on a cluster (causal consistency).
        return self._driver.session(
            database=self.database,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
            **options,
        )

    async def _write(self, work: Work[T]) -> T:
        with self._translated("write"):
            async with self._session() as session:
                return await session.execute_write(work)

    async def _read(self, work: Work[T]) -> T:
        with self._translated("read"):
            async with self._session() as session:
                return await session.execute_read(work)

    async def _query(self, query: LiteralString, **params: Any) -> list[Row]:
        """One read statement, as an auto-commit transaction (see :meth:`_statement`)."""
        with self._translated("read"):
            return await self._statement(query, params, READ_ACCESS)

    async def _statement(
        self, query: LiteralString, params: dict[str, Any], access_mode: str
    ) -> list[Row]:
        """One statement as an auto-commit transaction: the statement and the request
        for its rows go in one message to the server, and no BEGIN or COMMIT costs a
        round trip of its own (a single statement is atomic anyway). What a managed
        transaction would retry (a server restarting, a leader changing) is retried
        here too, a few times."""
        for pause in RETRY_PAUSES:
            try:
                return await self._autocommit(query, params, access_mode)
            except (Neo4jError, DriverError) as exc:
                if not exc.is_retryable():
                    raise
            await asyncio.sleep(pause)
        return await self._autocommit(query, params, access_mode)

    async def _autocommit(
        self, query: LiteralString, params: dict[str, Any], access_mode: str
    ) -> list[Row]:
        async with self._session(default_access_mode=access_mode) as session:
            return await _plain_rows(await session.run(query, params))

    async def _write_rows(self, query: LiteralString, rows: list[Row]) -> None:
        """One batch of rows in one locked write transaction (``export --to``)."""

        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(tx, cypher.LOCK_WRITERS)
            await _run(tx, query, rows=rows)

        if rows:
            await self._write(work)

    # ---- writes --------------------------------------------------------------------

    async def write_batch(
        self, keys: Collection[str], event_ids: Collection[str], planner: Planner
    ) -> ResolutionPlan:
        key_list, id_list = list(keys), list(event_ids)

        async def work(tx: AsyncManagedTransaction) -> ResolutionPlan:
            await _run(tx, cypher.LOCK_WRITERS)
            plan = planner(await self._snapshot(tx, key_list, id_list))
            if not plan.is_empty:
                await self._apply(tx, plan)
            return plan

        return await self._write(work)

    async def _snapshot(
        self, tx: AsyncManagedTransaction, keys: list[str], event_ids: list[str]
    ) -> Snapshot:
        # Hashing every key and looking each hash up is wasted while nothing was ever
        # erased, the usual case: the statement then says whether that still holds, read
        # under the writers' lock, so an erasure by another process since is never missed.
        by_hash = self._erasure.candidates(keys) if self._any_erased else {}
        found = await _record(
            tx, cypher.SNAPSHOT, keys=keys, eventIds=event_ids, hashes=list(by_hash)
        )
        erased = found["erased"]
        if found["anyErased"] and not self._any_erased:
            by_hash = self._erasure.candidates(keys)
            erased = (await _record(tx, cypher.ERASED_AMONG, hashes=list(by_hash)))["erased"]
        self._any_erased = found["anyErased"]
        return Snapshot(
            node_customer=dict(found["members"]),
            customers={
                cid: CustomerState(
                    cid,
                    _from_epoch([seconds, nanos]),
                    size,
                    counts_from_text(counts),
                )
                for cid, size, counts, seconds, nanos in found["customers"]
            },
            bans={frozenset(pair) for pair in found["bans"]},
            seen_events=set(found["seen"]),
            erased_keys={by_hash[h] for h in erased},
        )

    async def erasures(self) -> ErasureRecord:
        rows = await self._query(cypher.ALL_ERASED)
        return ErasureRecord([r["hash"] for r in rows], self._erasure.legacy_salt)

    async def iter_event_ids(self, batch_size: int = 10_000) -> AsyncIterator[list[str]]:
        last = ""
        while rows := await self._query(cypher.EVENT_IDS_AFTER, after=last, pageSize=batch_size):
            last = rows[-1]["id"]
            yield [r["id"] for r in rows]

    async def _apply(self, tx: AsyncManagedTransaction, plan: ResolutionPlan) -> None:
        at = plan.at
        new_ids = {c.id for c in plan.new_customers}
        updates = [u for u in plan.customer_updates if u.id not in new_ids]
        if plan.new_customers:
            # Created with their final state: the plan's update of a new customer.
            final = {u.id: u for u in plan.customer_updates if u.id in new_ids}
            await _run(
                tx,
                cypher.CREATE_CUSTOMERS,
                rows=[
                    _new_customer_row(c.id, c.created_at, final.get(c.id))
                    for c in plan.new_customers
                ],
            )
        if plan.merges:
            # A survivor may itself be absorbed later in the same plan: send every absorbed
            # id straight to the customer it ends in, so the rows are independent.
            survivor_of = {m.absorbed: m.survivor for m in plan.merges}

            def final_id(cid: str) -> str:
                while cid in survivor_of:
                    cid = survivor_of[cid]
                return cid

            rows = [
                {"absorbed": m.absorbed, "survivor": final_id(m.survivor), "at": _iso(at)}
                for m in plan.merges
            ]
            for query in (cypher.MOVE_MEMBERS, cypher.REPOINT_ALIASES, cypher.RETIRE_CUSTOMERS):
                await _run(tx, query, rows=rows)
        by_type: dict[NodeType, list[Row]] = {}
        for new in plan.new_nodes:
            n = new.node
            by_type.setdefault(n.type, []).append(
                _node_row(n.key, n.kind, n.value, n.attrs, new.customer_id, new.at)
            )
        for node_type, node_rows in by_type.items():
            await _run(tx, CREATE_NODES[node_type], rows=node_rows)
        if updates:
            await _run(
                tx,
                cypher.UPDATE_CUSTOMERS,
                rows=[
                    {
                        "id": u.id,
                        "size": u.size,
                        "kindCounts": counts_to_text(u.kind_counts),
                        "at": _iso(u.updated_at),
                    }
                    for u in updates
                ],
            )
        await self._apply_evidence(tx, plan)
        await _run(tx, cypher.CREATE_EVENTS, ids=plan.applied_events, at=at)

    async def _apply_evidence(self, tx: AsyncManagedTransaction, plan: ResolutionPlan) -> None:
        """Links, traits, interactions and consents of a plan. Evidence about a node the
        snapshot did not know (the plan creates it) cannot exist yet: it is created, not
        merged, which spares the server a search and a lock per row."""
        new_keys = {n.node.key for n in plan.new_nodes}
        new_links, known_links = _link_rows(plan.links, new_keys)
        new_traits, known_traits = _trait_rows(plan.traits, new_keys)
        for query, rows in (
            (cypher.CREATE_LINKS, new_links),
            (cypher.MERGE_LINKS, known_links),
            (cypher.CREATE_TRAITS, new_traits),
            (cypher.MERGE_TRAITS, known_traits),
        ):
            if rows:
                await _run(tx, query, rows=rows)
        if plan.interactions:
            await _run(
                tx,
                cypher.CREATE_INTERACTIONS,
                rows=[
                    _interaction_row(
                        i.id, [i.key], i.type, i.channel, i.at, i.source, i.properties, i.event_id
                    )
                    for i in plan.interactions
                ],
            )
        if plan.consents:
            await _run(tx, cypher.CREATE_CONSENTS, rows=_consent_rows(plan.consents))

    async def rewrite_customer(self, customer_id: str, splitter: Splitter) -> SplitPlan:
        async def work(tx: AsyncManagedTransaction) -> SplitPlan:
            await _run(tx, cypher.LOCK_WRITERS)
            plan = splitter(await self._component(tx, customer_id))
            at = plan.at
            await _run(
                tx,
                cypher.REJECT_LINKS,
                rows=[{"a": a, "b": b, "rule": rule} for a, b, rule in plan.rejected_links],
                at=at,
            )
            if plan.ban:
                a, b = sorted(plan.ban)
                await _run(tx, cypher.MERGE_BANS, rows=[{"a": a, "b": b, "at": _iso(at)}])
            kept = [p for p in plan.parts if not p.is_new]
            new = [p for p in plan.parts if p.is_new]
            await _run(
                tx,
                cypher.UPDATE_CUSTOMERS,
                rows=[
                    {
                        "id": p.customer_id,
                        "size": len(p.keys),
                        "kindCounts": counts_to_text(p.kind_counts),
                        "at": _iso(at),
                    }
                    for p in kept
                ],
            )
            await _run(
                tx,
                cypher.CREATE_SPLIT_PARTS,
                parts=[
                    {
                        "id": p.customer_id,
                        "size": len(p.keys),
                        "kindCounts": counts_to_text(p.kind_counts),
                        "keys": list(p.keys),
                    }
                    for p in new
                ],
                at=at,
                splitFrom=plan.customer_id,
            )
            return plan

        return await self._write(work)

    # ---- reads ---------------------------------------------------------------------

    async def customer_ids_of(self, keys: Sequence[str]) -> dict[str, str]:
        rows = await self._query(cypher.CUSTOMER_IDS_OF, keys=list(keys))
        return {r["key"]: r["id"] for r in rows}

    async def customers(self, ids: Sequence[str]) -> dict[str, CustomerRecord]:
        rows = await self._query(cypher.CUSTOMERS, ids=list(ids))
        return {r["requested"]: _customer(r) for r in rows}

    async def profiles(self, keys: Sequence[str], read: ProfileRead) -> dict[str, Profile]:
        page = read.interactions or InteractionPage(0)
        rows = await self._query(
            cypher.PROFILES,
            keys=list(dict.fromkeys(keys)),
            nodes=read.nodes,
            consents=read.consents,
            traits=read.traits,
            **_page_params(page),
        )
        return {
            r["key"]: Profile(
                _customer(r),
                _nodes(r["nodes"], r["id"]) if read.nodes else None,
                _consents(r["consents"]) if read.consents else None,
                _traits(r["traits"]) if read.traits else None,
                _interactions(r["interactions"]) if read.interactions else None,
            )
            for r in rows
        }

    async def nodes_of(self, customer_ids: Sequence[str]) -> dict[str, list[NodeRecord]]:
        rows = await self._query(cypher.NODES_OF, ids=list(customer_ids))
        return {cid: [] for cid in customer_ids} | {
            cid: _nodes([r["node"] for r in part], cid) for cid, part in _by_customer(rows)
        }

    async def traits_of(self, customer_ids: Sequence[str]) -> dict[str, list[TraitRecord]]:
        rows = await self._query(cypher.TRAITS_OF, ids=list(customer_ids))
        return {cid: [] for cid in customer_ids} | {
            cid: _traits(part) for cid, part in _by_customer(rows)
        }

    async def consents_of(self, customer_ids: Sequence[str]) -> dict[str, list[ConsentRecord]]:
        rows = await self._query(cypher.CONSENTS_OF, ids=list(customer_ids))
        return {cid: [] for cid in customer_ids} | {
            cid: _consents(part) for cid, part in _by_customer(rows)
        }

    async def interactions_of(
        self,
        customer_ids: Sequence[str],
        *,
        limit: int,
        before: tuple[datetime, str] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, list[InteractionView]]:
        page = InteractionPage(limit, before, tuple(types) if types else None, since)
        rows = await self._query(
            cypher.INTERACTIONS_OF, ids=list(customer_ids), **_page_params(page)
        )
        return {cid: [] for cid in customer_ids} | {
            cid: _interactions(part) for cid, part in _by_customer(rows)
        }

    async def count_interactions(
        self,
        customer_ids: Sequence[str],
        *,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        rows = await self._query(
            cypher.COUNT_INTERACTIONS,
            ids=list(customer_ids),
            types=list(types) if types else None,
            since=since,
        )
        return dict.fromkeys(customer_ids, 0) | {r["customer"]: int(r["total"]) for r in rows}

    async def component(self, customer_id: str) -> Component:
        return await self._read(lambda tx: self._component(tx, customer_id))

    async def _component(self, tx: AsyncManagedTransaction, customer_id: str) -> Component:
        found = await _rows(tx, cypher.CUSTOMERS, ids=[customer_id])
        if not found or found[0]["id"] != customer_id:
            raise NotFound(f"no customer {customer_id!r}")
        nodes = [
            _node(r["node"], customer_id)
            for r in await _rows(tx, cypher.COMPONENT_NODES, id=customer_id)
        ]
        nodes.sort(key=lambda n: n.key)
        links = [_link(r) for r in await _rows(tx, cypher.COMPONENT_LINKS, id=customer_id)]
        return Component(_customer(found[0]), nodes, links)

    async def links_of(self, keys: Sequence[str]) -> list[Link]:
        rows = await self._query(cypher.LINKS_OF, keys=list(keys))
        return list({(r["a"], r["b"]): _link(r) for r in rows}.values())

    async def rejected_links(
        self, *, limit: int, before: tuple[datetime, str, str] | None = None
    ) -> list[Link]:
        at, a, b = before if before else (None, None, None)
        rows = await self._query(
            cypher.REJECTED_LINKS, pageSize=limit, beforeAt=at, beforeA=a, beforeB=b
        )
        return [
            Link(r["a"], r["b"], r["source"], _dt(r["at"]), r["eventId"], False, r["rule"])
            for r in rows
        ]

    async def count_rejected_links(self) -> int:
        return int((await self._query(cypher.COUNT_REJECTED_LINKS))[0]["total"])

    # ---- segments (the filter's Cypher: store/neo4j_segments.py) --------------------

    async def segment_page(
        self,
        query: SegmentQuery,
        *,
        first: int,
        after: tuple[datetime, str] | None = None,
        sort: SegmentSort = SegmentSort.UPDATED_AT_DESC,
    ) -> SegmentPage:
        compiled = compile_segment(query)
        (row,) = await self._query(
            compiled.statement(cypher.SEGMENT_PAGE[sort.value]),
            **compiled.params,
            limit=first + 1,
            afterAt=after[0] if after else None,
            afterId=after[1] if after else None,
        )
        customers = [_customer(c) for c in row["customers"]]
        return SegmentPage(customers[:first], len(customers) > first, int(row["total"]))

    async def count_segment(self, query: SegmentQuery) -> int:
        compiled = compile_segment(query)
        rows = await self._query(compiled.statement(cypher.SEGMENT_COUNT), **compiled.params)
        return int(rows[0]["total"])

    async def iter_segment(
        self, query: SegmentQuery, batch_size: int = 1_000
    ) -> AsyncIterator[list[CustomerRecord]]:
        compiled = compile_segment(query)
        statement = compiled.statement(cypher.SEGMENT_BATCH, after_id=True)
        after = ""
        while rows := await self._query(
            statement, **compiled.params, afterId=after, pageSize=batch_size
        ):
            page = [_customer(r) for r in rows]
            after = page[-1].id
            yield page
            if len(page) < batch_size:
                return

    async def put_segment(self, segment: SavedSegment) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(
                tx,
                cypher.PUT_SEGMENT,
                name=segment.name,
                filter=json.dumps(segment.filter),
                description=segment.description,
                createdAt=segment.created_at,
            )

        await self._write(work)

    async def segments(self) -> list[SavedSegment]:
        found = [_segment(r["segment"]) for r in await self._query(cypher.SEGMENTS)]
        return sorted(found, key=lambda s: s.name)

    async def segment(self, name: str) -> SavedSegment | None:
        rows = await self._query(cypher.SEGMENT_NAMED, name=name)
        return _segment(rows[0]["segment"]) if rows else None

    async def meta(self, name: str) -> str | None:
        rows = await self._query(cypher.META_VALUE, name=name)
        return str(rows[0]["value"]) if rows else None

    async def put_meta(self, name: str, value: str) -> None:
        await self._write(partial(_run, query=cypher.SET_META, name=name, value=value))

    async def delete_segment(self, name: str) -> None:
        async def work(tx: AsyncManagedTransaction) -> int:
            return int((await _rows(tx, cypher.DELETE_SEGMENT, name=name))[0]["deleted"])

        if not await self._write(work):
            raise NotFound(f"no segment named {name!r}")

    # ---- whole graph -----------------------------------------------------------------

    async def iter_nodes(self, batch_size: int = 10_000) -> AsyncIterator[list[NodeRecord]]:
        after = ""
        while rows := await self._query(cypher.ITER_NODES, after=after, pageSize=batch_size):
            page = sorted((_node(r["node"], r["customer"]) for r in rows), key=lambda n: n.key)
            after = page[-1].key
            yield page

    async def iter_links(self, batch_size: int = 10_000) -> AsyncIterator[list[Link]]:
        """Pages of links, by pages of ``batch_size`` identity nodes in key order."""
        after = ""
        while rows := await self._query(cypher.ITER_LINKS, after=after, pageSize=batch_size):
            after = max(r["a"] for r in rows)
            page = sorted((_link(r) for r in rows if r["b"] is not None), key=lambda k: (k.a, k.b))
            if page:
                yield page

    async def iter_customers(self, batch_size: int = 10_000) -> AsyncIterator[list[CustomerRecord]]:
        after = ""
        while rows := await self._query(cypher.ITER_CUSTOMERS, after=after, pageSize=batch_size):
            page = sorted((_customer(r) for r in rows), key=lambda c: c.id)
            after = page[-1].id
            yield page

    async def aliases(self) -> dict[str, str]:
        return {r["alias"]: r["id"] for r in await self._query(cypher.ALIASES)}

    async def bans(self) -> list[tuple[str, str]]:
        return sorted((r["a"], r["b"]) for r in await self._query(cypher.BANS))

    async def counts(self) -> dict[str, int]:
        return await self._read(_counts)

    async def shared_attachments(self) -> list[SharedAttachment]:
        return await self._read(self._shared_attachments)

    async def _shared_attachments(self, tx: AsyncManagedTransaction) -> list[SharedAttachment]:
        found = [
            SharedAttachment(what, r["id"], tuple(sorted(r["keys"])))
            for what, query in (
                ("interaction", cypher.SHARED_INTERACTIONS),
                ("consent", cypher.SHARED_CONSENTS),
            )
            for r in await _rows(tx, query)
        ]
        return sorted(found, key=lambda a: (a.what, a.id))

    async def repair_attachments(self, subject_of: SubjectChooser) -> AttachmentRepair:
        async def work(tx: AsyncManagedTransaction) -> AttachmentRepair:
            await _run(tx, cypher.LOCK_WRITERS)
            drops: dict[str, list[Row]] = {"interaction": [], "consent": []}
            for shared in await self._shared_attachments(tx):
                keep = subject_of(shared)
                drops[shared.what] += [
                    {"id": shared.id, "key": k} for k in shared.keys if k != keep
                ]

            async def dropped(query: LiteralString, rows: list[Row]) -> int:
                return int((await _rows(tx, query, rows=rows))[0]["dropped"]) if rows else 0

            return AttachmentRepair(
                await dropped(cypher.DROP_PERFORMED, drops["interaction"]),
                await dropped(cypher.DROP_CONSENTS, drops["consent"]),
            )

        return await self._write(work)

    # ---- erasure, keys, audit ----------------------------------------------------------

    async def forget(self, customer_id: str, at: datetime) -> ErasureReport:
        async def work(tx: AsyncManagedTransaction) -> ErasureReport:
            await _run(tx, cypher.LOCK_WRITERS)
            members = await _rows(tx, cypher.FORGET_MEMBERS, id=customer_id)
            if not members:
                raise NotFound(f"no customer {customer_id!r}")
            kinds: dict[str, int] = {}
            for m in members:
                if m["kind"] is not None:
                    kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1

            async def deleted(query: LiteralString) -> int:
                return int((await _rows(tx, query, id=customer_id))[0]["deleted"])

            interactions = await deleted(cypher.FORGET_INTERACTIONS)
            traits = await deleted(cypher.FORGET_TRAITS)
            consents = await deleted(cypher.FORGET_CONSENTS)
            links = await deleted(cypher.FORGET_LINKS)
            aliases = await deleted(cypher.FORGET_ALIASES)
            hashes = [self._erasure.hash(m["key"]) for m in members if m["key"] is not None]
            await _run(tx, cypher.RECORD_ERASED, hashes=hashes, at=at)
            await _run(tx, cypher.FORGET_NODES, id=customer_id)
            await _run(tx, cypher.FORGET_CUSTOMER, id=customer_id)
            return ErasureReport(
                customer_id,
                dict(sorted(kinds.items())),
                aliases,
                links,
                traits,
                interactions,
                consents,
            )

        return await self._write(work)

    async def put_key(self, key: ApiKey) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(tx, cypher.LOCK_WRITERS)
            if await _rows(tx, cypher.API_KEY_NAMED, name=key.name):
                raise InvalidInput(f"an API key named {key.name!r} exists already")
            await _run(
                tx,
                cypher.CREATE_API_KEY,
                name=key.name,
                role=key.role.value,
                purposes=list(key.purposes),
                secretHash=key.secret_hash,
                createdAt=key.created_at,
            )

        await self._write(work)

    async def api_keys(self) -> list[ApiKey]:
        keys = [_api_key(r["key"]) for r in await self._query(cypher.API_KEYS)]
        return sorted(keys, key=lambda k: k.name)

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        rows = await self._query(cypher.API_KEY_BY_HASH, secretHash=secret_hash)
        return _api_key(rows[0]["key"]) if rows else None

    async def revoke_key(self, name: str, at: datetime) -> None:
        async def work(tx: AsyncManagedTransaction) -> int:
            await _run(tx, cypher.LOCK_WRITERS)
            return int((await _rows(tx, cypher.REVOKE_API_KEY, name=name, at=at))[0]["found"])

        if not await self._write(work):
            raise NotFound(f"no API key named {name!r}")

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """One auto-commit statement that reserves the entries' sequence numbers and
        creates them: one round trip."""
        rows = [
            {
                "at": _iso(e.at),
                "actor": e.actor,
                "purpose": e.purpose,
                "operation": e.operation,
                "customerId": e.customer_id,
                "detail": e.detail,
            }
            for e in entries
        ]
        if rows:
            with self._translated("write"):
                await self._statement(cypher.APPEND_AUDIT, {"rows": rows}, WRITE_ACCESS)

    async def audit_log(
        self, *, customer_id: str | None, limit: int, before: int | None = None
    ) -> list[AuditEntry]:
        rows = await self._query(
            cypher.AUDIT_LOG,
            before=before if before is not None else 2**62,
            customerId=customer_id,
            pageSize=limit,
        )
        entries = [
            AuditEntry(
                _dt(e["at"]),
                e["actor"],
                e["purpose"],
                e["operation"],
                e.get("customerId"),
                e["detail"],
                e["seq"],
            )
            for e in (r["entry"] for r in rows)
        ]
        return sorted(entries, key=lambda e: e.seq, reverse=True)

    async def count_audit(self, *, customer_id: str | None) -> int:
        rows = await self._query(cypher.COUNT_AUDIT, customerId=customer_id)
        return int(rows[0]["total"])

    # ---- bulk import (``idgraph export --to``; see idgraph.transfer) -----------------

    async def import_erasures(self, record: ErasureRecord, at: datetime) -> None:
        """Adopt a source store's erasure record (into an empty store). Its hashes match
        only if this store was opened with the source's erasure key."""

        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(tx, cypher.LOCK_WRITERS)
            if record.legacy_salt is not None:
                await _run(tx, cypher.SET_META, name=LEGACY_SALT, value=record.legacy_salt)
            await _run(tx, cypher.RECORD_ERASED, hashes=record.hashes, at=at)

        await self._write(work)
        if record.legacy_salt is not None:
            self._erasure.legacy_salt = record.legacy_salt

    async def import_event_ids(self, ids: Sequence[str], at: datetime) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            await _run(tx, cypher.LOCK_WRITERS)
            await _run(tx, cypher.IMPORT_EVENTS, ids=list(ids), at=at)

        if ids:
            await self._write(work)

    async def import_customers(self, records: Sequence[CustomerRecord]) -> None:
        """Create live customers with their aliases (merge times are not known)."""
        await self._write_rows(
            cypher.IMPORT_CUSTOMERS,
            [
                {
                    "id": c.id,
                    "createdAt": _iso(c.created_at),
                    "updatedAt": _iso(c.updated_at),
                    "size": c.size,
                    "kindCounts": counts_to_text(c.kind_counts),
                    "splitFrom": c.split_from,
                    "aliases": list(c.aliases),
                }
                for c in records
            ],
        )

    async def import_nodes(self, records: Sequence[NodeRecord]) -> None:
        by_type: dict[NodeType, list[Row]] = {}
        for n in records:
            by_type.setdefault(n.type, []).append(
                _node_row(n.key, n.kind, n.value, n.attrs, n.customer_id, n.created_at)
            )
        for node_type, rows in by_type.items():
            await self._write_rows(CREATE_NODES[node_type], rows)

    async def import_links(self, links: Sequence[Link]) -> None:
        await self._write_rows(cypher.MERGE_LINKS, [_link_row(k) for k in links])

    async def import_bans(self, pairs: Sequence[tuple[str, str]], at: datetime) -> None:
        await self._write_rows(
            cypher.MERGE_BANS, [{"a": min(p), "b": max(p), "at": _iso(at)} for p in pairs]
        )

    async def import_traits(self, traits: Sequence[TraitRecord]) -> None:
        await self._write_rows(cypher.MERGE_TRAITS, [_trait_row(t) for t in traits])

    async def import_interactions(self, views: Sequence[InteractionView]) -> None:
        await self._write_rows(
            cypher.MERGE_INTERACTIONS,
            [
                _interaction_row(
                    i.id, i.keys, i.type, i.channel, i.at, i.source, i.properties, i.event_id
                )
                for i in views
            ],
        )

    async def import_consents(self, consents: Sequence[ConsentRecord]) -> None:
        """Decisions with the time and sequence their source store recorded them at."""
        await self._write_rows(cypher.CREATE_CONSENTS, _consent_rows(consents))

    async def trait_values(
        self, customer_ids: Sequence[str], names: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        rows = await self._query(cypher.TRAIT_VALUES, ids=list(customer_ids), names=list(names))
        latest: dict[tuple[str, str], Row] = {}
        for r in rows:
            current = latest.get((r["customer"], r["name"]))
            if current is None or (r["at"], r["eventId"], r["key"]) > (
                current["at"],
                current["eventId"],
                current["key"],
            ):
                latest[r["customer"], r["name"]] = r
        found: dict[str, dict[str, Any]] = {cid: {} for cid in customer_ids}
        for (cid, name), r in sorted(latest.items()):
            found[cid][name] = json.loads(r["value"])
        return found

    # ---- health report -------------------------------------------------------------------

    async def health(self, now: datetime) -> HealthStats:
        async def work(tx: AsyncManagedTransaction) -> HealthStats:
            async def pairs(query: LiteralString) -> list[tuple[Any, int]]:
                return [(r["key"], r["n"]) for r in await _rows(tx, query)]

            async def days(query: LiteralString) -> dict[date, int]:
                return {date.fromisoformat(day): n for day, n in await pairs(query)}

            refused: dict[str, dict[date, int]] = {}
            for r in await _rows(tx, cypher.HEALTH_REFUSED):
                refused.setdefault(r["rule"] or "", {})[date.fromisoformat(r["day"])] = r["n"]
            consent: dict[str, dict[str, int]] = {}
            granted = ConsentStatus.GRANTED.value
            rows = await _rows(tx, cypher.HEALTH_CONSENT, granted=granted, now=now, expired=EXPIRED)
            for r in rows:
                consent.setdefault(r["purpose"], {})[r["status"]] = r["n"]
            return HealthStats(
                at=now,
                counts=await _counts(tx),
                store_bytes=None,
                customer_sizes=dict(await pairs(cypher.HEALTH_SIZES)),
                new_customers=await days(cypher.HEALTH_NEW_CUSTOMERS),
                merges=await days(cypher.HEALTH_MERGES),
                refused_links=refused,
                events=await days(cypher.HEALTH_EVENTS),
                interactions=dict(await pairs(cypher.HEALTH_INTERACTIONS)),
                consent={p: ConsentCoverage(**by) for p, by in sorted(consent.items())},
                super_nodes=tuple(
                    SuperNode(r["key"], r["kind"], r["links"], r["refused"])
                    for r in await _rows(tx, cypher.HEALTH_SUPER_NODES, limit=SUPER_NODES)
                ),
            )

        return await self._read(work)

    @asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[Neo4jStore]:
        """The store as of one moment, for a backup or a copy: a view whose reads all run
        in one transaction, which first takes the writers' lock (:data:`LOCK_WRITERS
        <idgraph.store.cypher.LOCK_WRITERS>`) and holds it until the view closes.

        One transaction alone is no snapshot on Neo4j: its isolation is read committed,
        so each statement sees what writers committed since the one before. The lock
        every idgraph writer takes first keeps them out instead: ingest, steward actions
        and erasures wait (in the server, without failing, under the default
        ``db.lock.acquisition.timeout`` of 0) until the view closes, while reads and
        their audit entries (which take no lock) go on. The transaction writes nothing
        else and is rolled back, so the server keeps no state for it but the lock; each
        read is one page, fully consumed, so memory stays bounded by the page size.
        ``db.transaction.timeout`` (unlimited by default) must allow a whole export."""
        with self._translated("consistent read"):
            async with self._session() as session:
                tx = await session.begin_transaction()
                try:
                    await _run(tx, cypher.LOCK_WRITERS)
                    yield _LockedView(self, tx)
                finally:
                    await tx.close()  # rolls back: the lock's time is not kept

    async def import_all(self, batches: AsyncIterable[ImportBatch], *, clear: bool) -> None:
        """Batch by batch (a large copy cannot be one transaction), between the
        :data:`RESTORE_INCOMPLETE` mark and its removal. On an error, what was written is
        deleted again, best effort, and the store stays marked."""
        if clear:
            await self.clear()
        await self._mark_restoring()
        try:
            async for batch in batches:
                await self._import_batch(batch)
        except Exception as exc:
            try:
                await self.clear()
                await self._mark_restoring()
                undone = "what it had written is deleted"
            except IdgraphError as again:
                undone = f"deleting what it had written failed too ({again})"
            raise StoreError(
                f"restore into {self.url} failed: {exc}\n{undone}; the store is marked as "
                "holding an incomplete restore and opens for nothing else until "
                "`idgraph restore --force FILE` completes"
            ) from exc
        await self._write(partial(_run, query=cypher.DELETE_META, name=RESTORE_INCOMPLETE))

    async def _mark_restoring(self) -> None:
        await self.put_meta(RESTORE_INCOMPLETE, _iso(datetime.now(UTC)))

    async def _import_batch(self, batch: ImportBatch) -> None:
        """Part by part, each part one write transaction or more."""
        await self.import_customers(batch.customers)
        await self.import_nodes(batch.nodes)
        await self.import_traits(batch.traits)
        await self.import_consents(batch.consents)
        await self.import_interactions(batch.interactions)
        await self.import_links(batch.links)
        await self.import_bans(batch.bans, batch.at)
        if batch.erased or batch.legacy_salt is not None:
            await self.import_erasures(ErasureRecord(batch.erased, batch.legacy_salt), batch.at)
        await self.import_event_ids(batch.events, batch.at)
        for segment in batch.segments:
            await self.put_segment(segment)
        for key in batch.api_keys:
            await self.put_key(key)
            if key.revoked_at is not None:
                await self.revoke_key(key.name, key.revoked_at)

    # ---- retention (idgraph.retention) -------------------------------------------------

    async def retention_counts(self, cutoffs: Mapping[Policy, datetime]) -> dict[Policy, int]:
        async def work(tx: AsyncManagedTransaction) -> dict[Policy, int]:
            return await neo4j_retention.counts(partial(_rows, tx), dict(cutoffs))

        return await self._read(work)

    async def purge_batch(
        self, policy: Policy, cutoff: datetime, *, limit: int, after: str | int | None = None
    ) -> PurgeStep:
        async def work(tx: AsyncManagedTransaction) -> PurgeStep:
            await _run(tx, cypher.LOCK_WRITERS)
            return await neo4j_retention.purge_batch(
                partial(_rows, tx), policy, cutoff, limit, after
            )

        return await self._write(work)


async def _counts(tx: AsyncManagedTransaction) -> dict[str, int]:
    return {
        name: int((await _rows(tx, query))[0]["total"]) for name, query in cypher.COUNTS.items()
    }


def _api_key(props: Row) -> ApiKey:
    revoked = props.get("revokedAt")
    return ApiKey(
        props["name"],
        Role(props["role"]),
        tuple(props["purposes"]),
        props["secretHash"],
        _dt(props["createdAt"]),
        _dt(revoked) if revoked is not None else None,
    )


def _trait_row(t: TraitRecord | TraitReport) -> Row:
    """A trait report for MERGE_TRAITS, with the instant its value names if it is an
    RFC 3339 timestamp (segments compare those as instants)."""
    at = instant(t.value) if isinstance(t.value, str) else None
    return {
        "key": t.key,
        "name": t.name,
        "value": json.dumps(t.value),
        "source": t.source,
        "at": _iso(t.at),
        "eventId": t.event_id,
        "instant": _iso(at) if at is not None else None,
    }


def _trait_rows(
    traits: Sequence[TraitReport], new_keys: Container[str]
) -> tuple[list[Row], list[Row]]:
    """One row per (node, trait name): the latest report, the last of equal times, which
    is what merging the reports one by one would keep. Rows for nodes in ``new_keys``
    (CREATE_TRAITS), then the others (MERGE_TRAITS)."""
    latest: dict[tuple[str, str], TraitReport] = {}
    for t in traits:
        kept = latest.get((t.key, t.name))
        if kept is None or t.at >= kept.at:
            latest[t.key, t.name] = t
    created: list[Row] = []
    merged: list[Row] = []
    for (key, _), t in latest.items():
        (created if key in new_keys else merged).append(_trait_row(t))
    return created, merged


def _segment(props: Row) -> SavedSegment:
    return SavedSegment(
        props["name"], json.loads(props["filter"]), props["description"], _dt(props["createdAt"])
    )


def _link_row(k: Link) -> Row:
    at = _iso(k.at)
    return {
        "a": k.a,
        "b": k.b,
        "source": k.source,
        "at": at,
        "eventId": k.event_id,
        "accepted": k.accepted,
        "rule": k.rule,
        "lastAt": at,
    }


def _link_rows(links: Sequence[Link], new_keys: Container[str]) -> tuple[list[Row], list[Row]]:
    """One row per node pair: the first evidence's source, time and event, with the
    verdict of the first accepted evidence (later ones change nothing) or else of the last
    refused one, which is what merging the links one by one would store. Pairs with a
    node in ``new_keys`` (CREATE_LINKS), then the others (MERGE_LINKS)."""
    rows: dict[tuple[str, str], Row] = {}
    for k in links:
        row = rows.get((k.a, k.b))
        if row is None:
            rows[k.a, k.b] = _link_row(k)
        elif not row["accepted"]:
            row["accepted"], row["rule"], row["lastAt"] = k.accepted, k.rule, _iso(k.at)
    created: list[Row] = []
    merged: list[Row] = []
    for (a, b), row in rows.items():
        (created if a in new_keys or b in new_keys else merged).append(row)
    return created, merged


def _new_customer_row(cid: str, created_at: datetime, final: CustomerUpdate | None) -> Row:
    """A new customer with its final state, or empty if the plan has none for it."""
    at = _iso(created_at)
    if final is None:
        return {"id": cid, "at": at, "updatedAt": at, "size": 0, "kindCounts": "{}"}
    return {
        "id": cid,
        "at": at,
        "updatedAt": _iso(final.updated_at),
        "size": final.size,
        "kindCounts": counts_to_text(final.kind_counts),
    }


def _interaction_row(
    iid: str,
    keys: Sequence[str],
    kind: str,
    channel: str | None,
    at: datetime,
    source: str,
    properties: Any,
    event_id: str,
) -> Row:
    return {
        "id": iid,
        "keys": list(keys),
        "type": kind,
        "channel": channel,
        "at": _iso(at),
        "source": source,
        "properties": json.dumps(properties),
        "eventId": event_id,
    }


def _consent_rows(consents: Sequence[ConsentRecord]) -> list[Row]:
    return [
        {
            "key": c.key,
            "purpose": c.purpose,
            "status": c.status.value,
            "at": _iso(c.at),
            "expiresAt": _iso(c.expires_at) if c.expires_at is not None else None,
            "source": c.source,
            "eventId": c.event_id,
            "recordedAt": _iso(c.recorded_at),
            "seq": c.seq,
        }
        for c in consents
    ]


class _LockedView(Neo4jStore):
    """The reads of a :class:`Neo4jStore`, every one in the transaction that
    :meth:`Neo4jStore.consistent_view` holds; it refuses writes."""

    def __init__(self, store: Neo4jStore, tx: AsyncTransaction) -> None:
        super().__init__(store._driver, store.url, store.database, b"")
        self._erasure = store._erasure
        self._tx = tx

    async def _read(self, work: Work[T]) -> T:
        with self._translated("read"):
            try:
                # An explicit transaction runs statements as a managed one does.
                return await work(cast(AsyncManagedTransaction, self._tx))
            except Neo4jError as exc:
                if "TransactionTimedOut" in (exc.code or ""):
                    raise StoreError(
                        f"Neo4j at {self.url} ended the consistent read after its "
                        "db.transaction.timeout: raise that setting above the time a "
                        "whole export takes"
                    ) from exc
                raise

    async def _write(self, work: Work[T]) -> T:
        raise StoreError(f"a consistent view of {self.url} is read-only")
