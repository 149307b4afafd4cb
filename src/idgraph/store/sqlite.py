"""The embedded store: SQLite in WAL mode, through the standard library.

Calls are synchronous inside ``async`` methods: each is a few indexed queries, cheaper
than a hop to a thread. A write (``write_batch``, ``rewrite_customer``) runs read, plan
and apply inside one ``BEGIN IMMEDIATE`` transaction, so concurrent processes serialize
on SQLite's write lock and a killed process leaves no half-applied batch.
``write_batch`` remembers the nodes and customers it read or wrote for the next batch,
and checks in each transaction that no other connection wrote since
(:mod:`idgraph.store.write_cache`).

Customers live in ``customers`` under an internal integer ``cluster``; nodes point at
the cluster. A merge moves the *smaller* cluster's nodes and hands the surviving public
id to the cluster that stays, so merging into a huge customer costs the small side only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Container,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from idgraph.domain.access import ApiKey, AuditEntry, ErasureReport, Role
from idgraph.domain.health import HealthStats
from idgraph.domain.model import (
    AttachmentRepair,
    Component,
    ConsentRecord,
    ConsentStatus,
    CustomerRecord,
    CustomerState,
    InteractionRecord,
    InteractionView,
    Link,
    NewNode,
    NodeRecord,
    ResolutionPlan,
    SharedAttachment,
    Snapshot,
    SplitPlan,
    TraitRecord,
)
from idgraph.domain.retention import Policy, PurgeStep
from idgraph.domain.segment import SavedSegment
from idgraph.errors import ConfigError, InvalidInput, NotFound, StoreError, StoreUnavailable
from idgraph.files import create_private
from idgraph.store import sqlite_health, sqlite_retention, sqlite_segments
from idgraph.store.encoding import counts_from_text, counts_to_text, sorted_json
from idgraph.store.erasure import (
    KEY_CHECK,
    LEGACY_SALT,
    UNKEYED_SALT,
    ErasureHasher,
    ErasureRecord,
)
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
from idgraph.store.sqlite_segments import BUDGET_SECONDS, LATEST_TRAIT_FIRST
from idgraph.store.write_cache import WriteCache, pair_code

SCHEMA_VERSION = "3"
OPEN_TIMEOUT = 30.0
MAX_PARAMS = 30_000
BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")
R = TypeVar("R")  # a record of a customer
# Pages the WAL may hold before a commit copies them into the database file (SQLite's
# default is 1,000, which a bulk batch exceeds on its own: a checkpoint after nearly every
# commit). A page written by several batches is copied once per checkpoint, so fewer
# checkpoints write less; the WAL file grows to about this many 4 KiB pages.
CHECKPOINT_PAGES = 16_384
# How long a forget waits for readers of other connections before it gives up truncating
# the WAL (see ``_purge_wal``).
PURGE_TIMEOUT_MS = 2_000
# SQLite virtual machine steps a read on the event loop may take (see ``_loop_read``):
# ~4 ms here; a profile with a few dozen interactions takes ~1,000.
LOOP_STEPS = 100_000

log = logging.getLogger("idgraph.store")


def _null(value: None) -> None:
    return value


# Python's sqlite3 binds int, float and str parameters directly, but looks for an adapter
# for any other value, None and bool included: a failed look-up raises and clears two
# AttributeErrors (~3,000 instructions), for every NULL and every flag of every row
# ingest writes (~2.5% of the writer's instructions). A registered adapter is found at
# once; it binds the same NULL and the same 0 or 1. (The registry is the process's.)
sqlite3.register_adapter(type(None), _null)
sqlite3.register_adapter(bool, int)

# The tables :meth:`SqliteStore.clear` empties: all but ``meta`` (schema version, key
# fingerprint).
DATA_TABLES = (
    "customers",
    "nodes",
    "aliases",
    "links",
    "bans",
    "traits",
    "interactions",
    "performed",
    "consents",
    "events",
    "erased",
    "api_keys",
    "audit",
    "segments",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers (
    cluster     INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    size        INTEGER NOT NULL,
    kind_counts TEXT NOT NULL,
    split_from  TEXT
);
CREATE TABLE IF NOT EXISTS nodes (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    attrs      TEXT,
    cluster    INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_by_cluster ON nodes (cluster);
CREATE TABLE IF NOT EXISTS aliases (
    alias       TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    at          TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_customer ON aliases (customer_id);
CREATE TABLE IF NOT EXISTS links (
    a        INTEGER NOT NULL,
    b        INTEGER NOT NULL,
    source   TEXT NOT NULL,
    at       TEXT NOT NULL,
    event_id TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    rule     TEXT,
    last_at  TEXT NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_b ON links (b);
CREATE INDEX IF NOT EXISTS rejected_links_by_time ON links (last_at, a, b) WHERE accepted = 0;
CREATE TABLE IF NOT EXISTS bans (a TEXT NOT NULL, b TEXT NOT NULL, at TEXT NOT NULL,
                                 PRIMARY KEY (a, b)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS traits (
    node     INTEGER NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    source   TEXT NOT NULL,
    at       TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (node, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS interactions (
    id         INTEGER PRIMARY KEY,
    ext_id     TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL,
    channel    TEXT,
    at         TEXT NOT NULL,
    source     TEXT NOT NULL,
    properties TEXT NOT NULL,
    event_id   TEXT NOT NULL
);
-- ``at`` is the interaction's, repeated so that a node's newest interactions are the
-- end of its key range: a page of them reads ~limit rows, however many there are.
CREATE TABLE IF NOT EXISTS performed (
    node        INTEGER NOT NULL,
    at          TEXT NOT NULL,
    interaction INTEGER NOT NULL,
    PRIMARY KEY (node, at, interaction)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS performed_by_interaction ON performed (interaction);
CREATE TABLE IF NOT EXISTS consents (
    node       INTEGER NOT NULL,
    purpose    TEXT NOT NULL,
    status     TEXT NOT NULL,
    at         TEXT NOT NULL,
    expires_at TEXT,
    source     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consents_by_node ON consents (node);
CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erased (hash TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    purposes    TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    operation   TEXT NOT NULL,
    customer_id TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_customer ON audit (customer_id, seq);
-- For retention (idgraph.store.sqlite_retention): the oldest rows first. Created at every
-- open, so a file of an earlier version gets them too and stays readable by it.
CREATE INDEX IF NOT EXISTS interactions_by_time ON interactions (at);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
CREATE TABLE IF NOT EXISTS segments (
    name        TEXT PRIMARY KEY,
    filter      TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;
"""

# Statements that bring a file from the version named to the next one, run at open.
MIGRATIONS: dict[str, tuple[str, ...]] = {
    # Consent decisions are ordered by when idgraph recorded them (and rowid): a decision
    # was recorded with its event, whose batch time ``events.at`` holds.
    "1": (
        "ALTER TABLE consents ADD COLUMN recorded_at TEXT NOT NULL DEFAULT ''",
        "UPDATE consents SET recorded_at = coalesce("
        "(SELECT events.at FROM events WHERE events.id = consents.event_id), consents.at)",
    ),
    # ``performed`` keys each interaction by its time too (see the schema).
    "2": (
        "CREATE TABLE performed_by_time (node INTEGER NOT NULL, at TEXT NOT NULL, "
        "interaction INTEGER NOT NULL, PRIMARY KEY (node, at, interaction)) WITHOUT ROWID",
        "INSERT INTO performed_by_time SELECT p.node, i.at, p.interaction FROM performed p "
        "JOIN interactions i ON i.id = p.interaction ORDER BY 1, 2, 3",
        "DROP TABLE performed",
        "ALTER TABLE performed_by_time RENAME TO performed",
        "CREATE INDEX performed_by_interaction ON performed (interaction)",
    ),
}


_json_encoder = msgspec.json.Encoder()


def ts(value: datetime) -> str:
    """UTC timestamps as fixed-width ISO text (``isoformat(timespec="microseconds")``),
    so text order is time order.

    Ingest writes several per event. msgspec writes a UTC time as ``"…:SSZ"`` or
    ``"…:SS.ffffffZ"`` (22 or 29 bytes with the quotes; any other offset, or none, is
    longer or shorter) ~8x faster than ``isoformat``, which takes the other times."""
    text = _json_encoder.encode(value)
    if len(text) == 29:
        return text[1:27].decode() + "+00:00"
    if len(text) == 22:
        return text[1:20].decode() + ".000000+00:00"
    return value.isoformat(timespec="microseconds")


def json_text(value: object) -> str:
    """A trait value or interaction properties as compact JSON text, read back with
    :func:`json_value`: ~10x cheaper than ``json.dumps``, and ingest writes one per trait
    and per interaction (values are finite and 64-bit already: ``domain.events``)."""
    return _json_encoder.encode(value).decode()


_json_decoder = msgspec.json.Decoder()


def json_value(text: str) -> Any:
    """A value written by :func:`json_text` or ``json.dumps``, read back: ~10x cheaper
    than ``json.loads`` for these short texts, and reading a profile decodes one per
    interaction, trait and identity node with attributes."""
    return _json_decoder.decode(text)


def dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the store's file, set up as each of its connections must be:
    ``secure_delete`` overwrites deleted rows (and freed pages) with zeros, so erased data
    does not linger in the file; sorts and temporary tables stay in memory, never in a
    temporary file (a scan's sort of a customer's 100,000 interactions wrote 25 MB to
    disk per read, personal data included)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    db.executescript(
        "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536;"
        f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}; PRAGMA secure_delete=ON;"
    )
    return db


def _chunks(items: Sequence[Any], size: int = MAX_PARAMS) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _interaction_filters(
    types: Collection[str] | None, since: datetime | None
) -> tuple[list[str], list[Any]]:
    """The conditions on ``i`` (interactions) of the ``types`` and ``since`` filters of
    :meth:`SqliteStore.interactions_of` and ``count_interactions``, with their parameters
    in order (a page of interactions bounds its time otherwise: ``_interactions_in``)."""
    where: list[str] = []
    params: list[Any] = []
    if types:
        where.append(f"i.type IN ({_marks(len(types))})")
        params += types
    if since is not None:
        where.append("i.at >= ?")
        params.append(ts(since))
    return where, params


def _saved_segment(row: tuple[str, str, str, str]) -> SavedSegment:
    name, filter, description, created = row
    return SavedSegment(name, json.loads(filter), description, dt(created))


class SqliteStore:
    """A :class:`~idgraph.store.port.Store` in one SQLite file (``sqlite:///path``).

    ``erasure_key`` keys the erasure record (:mod:`idgraph.store.erasure`); it must not
    be stored in the file. A new file is created with mode 0600, and SQLite gives its
    ``-wal`` and ``-shm`` files the same mode; an existing file keeps its mode (with a
    warning if other users may read it).
    """

    def __init__(self, path: str | Path, *, erasure_key: bytes) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self._erasure = ErasureHasher(erasure_key)
        self._erasure_key = erasure_key  # for consistent_view
        self._audit_db: sqlite3.Connection | None = None  # see append_audit
        self._audit_lock = threading.Lock()
        self._scan_db: sqlite3.Connection | None = None  # see _scan
        self._scanner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idgraph-scan")
        self._cache = WriteCache()
        self._committer: ThreadPoolExecutor | None = None  # see bulk_writes
        self._committing: Future[None] | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                if not create_private(self.path):
                    _warn_if_shared(Path(self.path))
            self._connection = _connect(self.path)
            sqlite_segments.register(self._connection)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open SQLite store at {self.path}: {exc}") from exc
        try:
            self._prepare()
        except sqlite3.Error as exc:
            self._connection.close()
            raise StoreUnavailable(f"cannot open SQLite store at {self.path}: {exc}") from exc
        except BaseException:
            self._connection.close()
            raise

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, once the commit that ``bulk_writes`` may run in the background
        is done: every statement goes through here (``_connection`` itself only opens,
        closes and commits)."""
        if self._committing is not None:
            self._settle()
        return self._connection

    def _prepare(self) -> None:
        """WAL mode and the schema. Switching a new file to WAL reports "locked" at once,
        without waiting, while another process creates the same file: retry then.

        Erased data does not linger in the database file (``_connect``); ``_purge_wal``
        clears the WAL."""
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            try:
                self._db.executescript(
                    f"PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES};"
                )
                with self._write() as db:
                    for statement in SCHEMA.split(";"):
                        db.execute(statement)
                    db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (SCHEMA_VERSION,),
                    )
                    _migrate(db, self.path)
                    self._check_key(db)
                    rekeyed = self._rekey_erasures(db)
                    legacy = db.execute(
                        "SELECT value FROM meta WHERE name = ?", (LEGACY_SALT,)
                    ).fetchone()
                    self._erasure.legacy_salt = None if legacy is None else legacy[0]
                break
            except (sqlite3.OperationalError, StoreError) as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if rekeyed:
            self._purge_wal()

    def _check_key(self, db: sqlite3.Connection) -> None:
        recorded = db.execute("SELECT value FROM meta WHERE name = ?", (KEY_CHECK,)).fetchone()
        self._erasure.verify(
            None if recorded is None else recorded[0],
            has_record=db.execute("SELECT 1 FROM erased LIMIT 1").fetchone() is not None,
            store=self.url,
        )
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (KEY_CHECK, self._erasure.key_check)
        )

    def _rekey_erasures(self, db: sqlite3.Connection) -> bool:
        """A store erased before the HMAC keeps its salt in ``meta``: key its hashes and
        keep the salt as the legacy salt (see :mod:`idgraph.store.erasure`). True if the
        record was re-keyed."""
        salt = db.execute("SELECT value FROM meta WHERE name = ?", (UNKEYED_SALT,)).fetchone()
        if salt is None:
            return False
        rows = db.execute("SELECT hash, at FROM erased").fetchall()
        db.execute("DELETE FROM erased")
        db.executemany(
            "INSERT INTO erased VALUES (?, ?)", [(self._erasure.rekey(h), at) for h, at in rows]
        )
        if rows:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (LEGACY_SALT, salt[0]))
        db.execute("DELETE FROM meta WHERE name = ?", (UNKEYED_SALT,))
        return True

    def _purge_wal(self) -> None:
        """Copy the WAL into the database file and truncate it to zero bytes, so the old
        page versions it holds (the erased rows among them) are gone from the disk files.

        Readers of other connections still on an older snapshot keep the WAL from being
        reset: SQLite's busy handler waits for them up to ``PURGE_TIMEOUT_MS``. If they
        hold on longer, the erasure stands but its data stays in the WAL until the next
        complete checkpoint (the next ``forget`` tries again; SQLite checkpoints and
        deletes the WAL when the last connection closes). Either way this only warns: the
        erasure itself is committed."""
        if self.path == ":memory:":
            return
        db = self._db
        problem = ""
        try:
            db.execute(f"PRAGMA busy_timeout={PURGE_TIMEOUT_MS}")
            if db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                problem = "readers of other connections still use it"
        except sqlite3.Error as exc:
            problem = str(exc)
        finally:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if problem:
            log.warning(
                "SQLite store at %s: the WAL could not be truncated after an erasure (%s); "
                "erased data stays in %s-wal until the next complete checkpoint",
                self.path,
                problem,
                self.path,
            )

    async def close(self) -> None:
        try:
            self._settle()
        finally:
            self._connection.close()
        self._scanner.shutdown()
        if self._scan_db is not None:
            self._scan_db.close()
        with self._audit_lock:
            if self._audit_db is not None:
                self._audit_db.close()

    async def ping(self) -> None:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store at {self.path} does not answer: {exc}") from exc

    # ---- transactions --------------------------------------------------------------

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Inside, a write transaction's COMMIT runs on a thread of its own, while the
        caller makes the next batch ready (receives and decodes it, or reads and checks
        its lines): the commit, writing every page the batch changed to the WAL, is ~10%
        of a bulk writer's time and releases the GIL. The next use of the connection
        waits for it, and raises its error; leaving waits for the last one. A commit that
        fails rolls its batch back whole, as ever, and empties the write cache, which had
        learnt the batch."""
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idgraph-commit")
        try:
            yield
        finally:
            try:
                self._settle()
            finally:
                self._committer.shutdown()
                self._committer = None

    def _settle(self) -> None:
        """Wait for the commit running in the background, if any; raise its error."""
        committing, self._committing = self._committing, None
        if committing is None:
            return
        try:
            committing.result()
        except BaseException:
            self._cache.clear()
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._transaction("BEGIN IMMEDIATE", committer=self._committer) as db:
            yield db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._db.in_transaction:
            yield self._db
            return
        with self._transaction("BEGIN") as db:
            yield db

    @contextmanager
    def _transaction(
        self,
        begin: str,
        db: sqlite3.Connection | None = None,
        committer: ThreadPoolExecutor | None = None,
    ) -> Iterator[sqlite3.Connection]:
        """A transaction on ``db`` (by default the store's connection); its COMMIT runs
        on ``committer`` if given (see ``bulk_writes``)."""
        db = self._db if db is None else db
        try:
            db.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if committer is None:
            self._commit(db)
        else:
            self._committing = committer.submit(self._commit, db)

    def _commit(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"SQLite store at {self.path}: commit failed: {exc}") from exc

    def _select_in(
        self,
        sql: str,
        values: Sequence[Any],
        *params: Any,
        db: sqlite3.Connection | None = None,
        order: Callable[[Any], Any] | None = None,
    ) -> list[Any]:
        """Run ``sql`` (with one ``{marks}`` placeholder) over ``values`` in chunks; with
        ``order``, the rows of all chunks sorted by it. A profile's few rows sort faster
        here than by an ORDER BY, which builds SQLite a temporary B-tree for each."""
        db = self._db if db is None else db
        rows: list[Any] = []
        for chunk in _chunks(values):
            rows.extend(db.execute(sql.format(marks=_marks(len(chunk))), (*params, *chunk)))
        if order is not None:
            rows.sort(key=order)
        return rows

    # ---- writes --------------------------------------------------------------------

    async def write_batch(
        self, keys: Collection[str], event_ids: Collection[str], planner: Planner
    ) -> ResolutionPlan:
        cache = self._cache
        try:
            with self._write() as db:
                if cache.check(db.execute("PRAGMA data_version").fetchone()[0]):
                    cache.start_events(
                        db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None
                    )
                missing = cache.missing(keys)
                if missing and not cache.holds_every_node(self._max_node_id()):
                    self._remember(missing)
                node_ids: dict[str, int] = {}
                node_customer: dict[str, str] = {}
                customers: dict[str, CustomerState] = {}
                cluster_of: dict[str, list[int]] = {}
                for key in keys:
                    hit = cache.nodes.get(key)
                    if hit is None:
                        continue
                    node_ids[key] = hit[0]
                    node_customer[key] = cid = cache.customer_of(hit[1])
                    if cid not in customers:
                        cluster, customers[cid] = cache.customers[cid]
                        cluster_of[cid] = [cluster, customers[cid].size]
                seen = cache.seen(event_ids)
                if seen is None:
                    seen = {
                        r[0]
                        for r in self._select_in(
                            "SELECT id FROM events WHERE id IN ({marks})", list(event_ids)
                        )
                    }
                snapshot = Snapshot(
                    node_customer=node_customer,
                    customers=customers,
                    bans=self._bans_between(cluster_of),
                    seen_events=seen,
                    erased_keys=self._erased(keys),
                )
                plan = planner(snapshot)
                linked = self._apply(plan, node_ids, cluster_of) if not plan.is_empty else []
        except sqlite3.Error as exc:
            cache.clear()
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc
        except BaseException:
            cache.clear()
            raise
        cache.learn(plan, node_ids, cluster_of, linked)
        return plan

    def _max_node_id(self) -> int:
        return int(self._db.execute("SELECT max(id) FROM nodes").fetchone()[0] or 0)

    def _remember(self, keys: list[str]) -> None:
        """Read the stored nodes among ``keys`` and their customers into the cache, in
        one statement per chunk; each customer's row is decoded once."""
        cache = self._cache
        states: dict[int, CustomerState] = {}
        for key, node, cluster, cid, created, size, counts in self._select_in(
            "SELECT n.key, n.id, n.cluster, c.id, c.created_at, c.size, c.kind_counts "
            "FROM nodes n JOIN customers c ON c.cluster = n.cluster WHERE n.key IN ({marks})",
            keys,
        ):
            state = states.get(cluster)
            if state is None:
                state = states[cluster] = CustomerState(
                    cid, dt(created), size, counts_from_text(counts)
                )
            cache.remember(key, node, cluster, state)

    def _bans_between(self, cluster_of: dict[str, list[int]]) -> set[frozenset[str]]:
        """Pairs of these customers (id → [cluster, size]) that a ban keeps apart."""
        if not cluster_of or self._db.execute("SELECT 1 FROM bans LIMIT 1").fetchone() is None:
            return set()
        rows = self._select_in(
            "SELECT ca.id, cb.id FROM bans "
            "JOIN nodes na ON na.key = bans.a JOIN customers ca ON ca.cluster = na.cluster "
            "JOIN nodes nb ON nb.key = bans.b JOIN customers cb ON cb.cluster = nb.cluster "
            "WHERE na.cluster IN ({marks})",
            [cluster for cluster, _ in cluster_of.values()],
        )
        return {frozenset(r) for r in rows if r[1] in cluster_of and r[0] != r[1]}

    def _erased(self, keys: Iterable[str]) -> set[str]:
        if self._db.execute("SELECT 1 FROM erased LIMIT 1").fetchone() is None:
            return set()
        by_hash = self._erasure.candidates(keys)
        rows = self._select_in("SELECT hash FROM erased WHERE hash IN ({marks})", list(by_hash))
        return {by_hash[h] for (h,) in rows}

    def _apply(
        self,
        plan: ResolutionPlan,
        known: dict[str, int],
        cluster_of: dict[str, list[int]],
    ) -> list[int]:
        """Write ``plan``; ``known`` (key → node id) learns the new nodes' ids and
        ``cluster_of`` (customer id → [cluster, size]) the new and merged customers.
        Returns the node pairs whose link is accepted now (see ``pair_code``)."""
        db = self._db
        next_cluster = (db.execute("SELECT max(cluster) FROM customers").fetchone()[0] or 0) + 1
        # A new customer is written once, in its final state; the others are updated.
        updates = {u.id: u for u in plan.customer_updates}
        customer_rows = []
        for c in plan.new_customers:
            u = updates.pop(c.id)
            customer_rows.append(
                (
                    next_cluster,
                    c.id,
                    ts(c.created_at),
                    ts(u.updated_at),
                    u.size,
                    counts_to_text(u.kind_counts),
                )
            )
            cluster_of[c.id] = [next_cluster, 0]
            next_cluster += 1
        db.executemany(
            "INSERT INTO customers (cluster, id, created_at, updated_at, size, kind_counts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            customer_rows,
        )
        for merge in plan.merges:
            self._merge(merge.absorbed, merge.survivor, cluster_of, plan.at)
        node_id = self._max_node_id() + 1
        rows = []
        # Ids are given in key order, so the rows go in order of both the table (ids only
        # grow) and its index on ``key`` (random values): see the comment on links below.
        for new in sorted(plan.new_nodes, key=_node_key):
            n = new.node
            attrs = sorted_json(dict(n.attrs)) if n.attrs else None
            rows.append(
                (node_id, n.key, n.kind, n.value, attrs, cluster_of[new.customer_id][0], ts(new.at))
            )
            known[n.key] = node_id
            node_id += 1
        db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        # By cluster, the integer key: a probe of the table, not of the id index too.
        db.executemany(
            "UPDATE customers SET size = ?, kind_counts = ?, updated_at = ? WHERE cluster = ?",
            [
                (u.size, counts_to_text(u.kind_counts), ts(u.updated_at), cluster_of[u.id][0])
                for u in updates.values()
            ],
        )
        # Evidence for a pair already accepted writes nothing (so a pair the cache knows
        # is accepted is left out); a refusal again refreshes the time and rule (stewards
        # see conflicts newest first). A pair seen many times in the batch is written
        # once, as the upserts one by one would have left it.
        #
        # Rows of tables keyed by random values go in key order: each B-tree page is
        # then visited once per batch, in order, instead of once per row.
        link_rows = _link_rows(plan.links, known, self._cache.linked)
        db.executemany(
            "INSERT INTO links (a, b, source, at, event_id, accepted, rule, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (a, b) DO UPDATE SET "
            "accepted = excluded.accepted, rule = excluded.rule, last_at = excluded.last_at "
            "WHERE links.accepted = 0",
            link_rows,
        )
        trait_rows = [
            (known[t.key], t.name, json_text(t.value), t.source, ts(t.at), t.event_id)
            for t in plan.traits
        ]
        # A stable sort: of one node's reports of a trait, the last still wins a tie.
        trait_rows.sort(key=_primary_key)
        db.executemany(
            "INSERT INTO traits VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node, name) DO UPDATE SET "
            "value = excluded.value, source = excluded.source, at = excluded.at, "
            "event_id = excluded.event_id WHERE excluded.at >= traits.at",
            trait_rows,
        )
        if plan.interactions:
            interaction_id = (db.execute("SELECT max(id) FROM interactions").fetchone()[0] or 0) + 1
            interaction_rows: list[tuple[Any, ...]] = []
            performed: list[tuple[int, str, int]] = []
            # In ``ext_id`` order, for its index, as nodes above.
            for i in sorted(plan.interactions, key=_interaction_id):
                at = ts(i.at)
                interaction_rows.append(
                    (
                        interaction_id,
                        i.id,
                        i.type,
                        i.channel,
                        at,
                        i.source,
                        json_text(i.properties) if i.properties else "{}",
                        i.event_id,
                    )
                )
                performed.append((known[i.key], at, interaction_id))
                interaction_id += 1
            db.executemany(
                "INSERT INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", interaction_rows
            )
            performed.sort()
            db.executemany("INSERT INTO performed VALUES (?, ?, ?)", performed)
        # Rows go in plan order, so rowid orders decisions recorded at the same time.
        _insert_consents(db, plan.consents, known)
        now = ts(plan.at)
        db.executemany(
            "INSERT INTO events VALUES (?, ?)", [(e, now) for e in sorted(plan.applied_events)]
        )
        return [pair_code(row[0], row[1]) for row in link_rows if row[5]]

    def _merge(
        self, absorbed: str, survivor: str, cluster_of: dict[str, list[int]], at: datetime
    ) -> None:
        db = self._db
        (ca, sa), (cs, ss) = cluster_of.pop(absorbed), cluster_of[survivor]
        if sa <= ss:
            db.execute("UPDATE nodes SET cluster = ? WHERE cluster = ?", (cs, ca))
            db.execute("DELETE FROM customers WHERE cluster = ?", (ca,))
            cluster_of[survivor] = [cs, sa + ss]
        else:  # move the survivor's smaller side, keep its id and creation time
            db.execute("UPDATE nodes SET cluster = ? WHERE cluster = ?", (ca, cs))
            created, split_from = db.execute(
                "SELECT created_at, split_from FROM customers WHERE cluster = ?", (cs,)
            ).fetchone()
            db.execute("DELETE FROM customers WHERE cluster = ?", (cs,))
            db.execute(
                "UPDATE customers SET id = ?, created_at = ?, split_from = ? WHERE cluster = ?",
                (survivor, created, split_from, ca),
            )
            cluster_of[survivor] = [ca, sa + ss]
        db.execute("UPDATE aliases SET customer_id = ? WHERE customer_id = ?", (survivor, absorbed))
        db.execute("INSERT INTO aliases VALUES (?, ?, ?)", (absorbed, survivor, ts(at)))

    async def rewrite_customer(self, customer_id: str, splitter: Splitter) -> SplitPlan:
        self._cache.clear()
        try:
            with self._write() as db:
                component = self._component(customer_id)
                plan = splitter(component)
                at = ts(plan.at)
                ids = dict(
                    db.execute(
                        "SELECT key, id FROM nodes WHERE cluster = "
                        "(SELECT cluster FROM customers WHERE id = ?)",
                        (customer_id,),
                    )
                )
                db.executemany(
                    "UPDATE links SET accepted = 0, rule = ?, last_at = ? WHERE a = ? AND b = ?",
                    [(rule, at, ids[a], ids[b]) for a, b, rule in plan.rejected_links],
                )
                if plan.ban:
                    db.execute(
                        "INSERT OR IGNORE INTO bans VALUES (?, ?, ?)", (*sorted(plan.ban), at)
                    )
                next_cluster = db.execute("SELECT max(cluster) FROM customers").fetchone()[0] + 1
                for part in plan.parts:
                    counts = counts_to_text(part.kind_counts)
                    if not part.is_new:
                        db.execute(
                            "UPDATE customers SET size = ?, kind_counts = ?, updated_at = ? "
                            "WHERE id = ?",
                            (len(part.keys), counts, at, part.customer_id),
                        )
                        continue
                    db.execute(
                        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            next_cluster,
                            part.customer_id,
                            at,
                            at,
                            len(part.keys),
                            counts,
                            plan.customer_id,
                        ),
                    )
                    db.executemany(
                        "UPDATE nodes SET cluster = ? WHERE id = ?",
                        [(next_cluster, ids[k]) for k in part.keys],
                    )
                    next_cluster += 1
                return plan
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc

    # ---- reads ---------------------------------------------------------------------

    async def customer_ids_of(self, keys: Sequence[str]) -> dict[str, str]:
        with self._read():
            rows = self._select_in(
                "SELECT nodes.key, customers.id FROM nodes "
                "JOIN customers ON customers.cluster = nodes.cluster WHERE nodes.key IN ({marks})",
                list(keys),
            )
        return dict(rows)

    def _live_ids(self, ids: Sequence[str]) -> dict[str, str]:
        live = {
            r[0]: r[0]
            for r in self._select_in("SELECT id FROM customers WHERE id IN ({marks})", list(ids))
        }
        missing = [i for i in ids if i not in live]
        if missing:
            live.update(
                self._select_in(
                    "SELECT alias, customer_id FROM aliases WHERE alias IN ({marks})", missing
                )
            )
        return live

    async def customers(self, ids: Sequence[str]) -> dict[str, CustomerRecord]:
        with self._read():
            live = self._live_ids(ids)
            records = self._customer_records(sorted(set(live.values())))
        return {requested: records[cid] for requested, cid in live.items() if cid in records}

    def _customer_records(
        self, ids: Sequence[str], db: sqlite3.Connection | None = None
    ) -> dict[str, CustomerRecord]:
        aliases: dict[str, list[str]] = {}
        for alias, cid in self._select_in(
            "SELECT alias, customer_id FROM aliases WHERE customer_id IN ({marks})",
            ids,
            db=db,
            order=itemgetter(0),
        ):
            aliases.setdefault(cid, []).append(alias)
        rows = self._select_in(
            "SELECT id, created_at, updated_at, size, kind_counts, split_from FROM customers "
            "WHERE id IN ({marks})",
            ids,
            db=db,
        )
        return {
            cid: CustomerRecord(
                cid,
                dt(created),
                dt(updated),
                size,
                counts_from_text(counts),
                tuple(aliases.get(cid, ())),
                split_from,
            )
            for cid, created, updated, size, counts, split_from in rows
        }

    async def profiles(self, keys: Sequence[str], read: ProfileRead) -> dict[str, Profile]:
        return await self._loop_read(partial(self._profiles, keys, read))

    def _profiles(
        self, keys: Sequence[str], read: ProfileRead, db: sqlite3.Connection
    ) -> dict[str, Profile]:
        found = self._select_in(
            "SELECT nodes.key, customers.cluster, customers.id FROM nodes "
            "JOIN customers ON customers.cluster = nodes.cluster "
            "WHERE nodes.key IN ({marks})",
            list(keys),
            db=db,
        )
        clusters = {cluster: cid for _, cluster, cid in found}
        records = self._customer_records(list(clusters.values()), db)
        nodes = self._nodes_in(clusters, db) if read.nodes else {}
        consents = self._consents_in(clusters, db) if read.consents else {}
        traits = self._traits_in(clusters, db) if read.traits else {}
        page = read.interactions
        interactions = self._interactions_in(clusters, page, db) if page else {}
        profiles = {
            cid: Profile(
                records[cid],
                nodes.get(cid, []) if read.nodes else None,
                consents.get(cid, []) if read.consents else None,
                traits.get(cid, []) if read.traits else None,
                interactions.get(cid, []) if page else None,
            )
            for cid in clusters.values()
        }
        return {key: profiles[cid] for key, _, cid in found}

    async def _of_customers(
        self,
        customer_ids: Sequence[str],
        read_in: Callable[[dict[int, str], sqlite3.Connection], dict[str, list[R]]],
    ) -> dict[str, list[R]]:
        """``read_in`` of the live ones among ``customer_ids`` (see ``_loop_read``); an
        empty list for each of the others."""
        found = await self._loop_read(lambda db: read_in(self._clusters(customer_ids, db), db))
        return {cid: [] for cid in customer_ids} | found

    def _clusters(self, customer_ids: Sequence[str], db: sqlite3.Connection) -> dict[int, str]:
        """The internal cluster of each live customer id (aliases are not followed)."""
        return dict(
            self._select_in(
                "SELECT cluster, id FROM customers WHERE id IN ({marks})",
                list(customer_ids),
                db=db,
            )
        )

    async def nodes_of(self, customer_ids: Sequence[str]) -> dict[str, list[NodeRecord]]:
        return await self._of_customers(customer_ids, self._nodes_in)

    def _nodes_in(
        self, clusters: dict[int, str], db: sqlite3.Connection
    ) -> dict[str, list[NodeRecord]]:
        result: dict[str, list[NodeRecord]] = {}
        for cluster, key, kind, value, attrs, created in self._select_in(
            "SELECT cluster, key, kind, value, attrs, created_at FROM nodes "
            "WHERE cluster IN ({marks})",
            list(clusters),
            db=db,
            order=itemgetter(1),
        ):
            cid = clusters[cluster]
            result.setdefault(cid, []).append(
                NodeRecord(key, kind, value, cid, json_value(attrs) if attrs else {}, dt(created))
            )
        return result

    async def traits_of(self, customer_ids: Sequence[str]) -> dict[str, list[TraitRecord]]:
        return await self._of_customers(customer_ids, self._traits_in)

    def _traits_in(
        self, clusters: dict[int, str], db: sqlite3.Connection
    ) -> dict[str, list[TraitRecord]]:
        result: dict[str, list[TraitRecord]] = {}
        for cluster, key, name, value, source, at, event_id in self._select_in(
            "SELECT n.cluster, n.key, t.name, t.value, t.source, t.at, t.event_id FROM nodes n "
            "JOIN traits t ON t.node = n.id WHERE n.cluster IN ({marks})",
            list(clusters),
            db=db,
            order=itemgetter(5, 1),  # time, then key
        ):
            result.setdefault(clusters[cluster], []).append(
                TraitRecord(key, name, json_value(value), source, dt(at), event_id)
            )
        return result

    async def trait_values(
        self, customer_ids: Sequence[str], names: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        # One statement per chunk of customers: only the asked names are read (the
        # ``traits`` key is (node, name)), and the window keeps each one's latest report.
        wanted = sorted(set(names))
        found: dict[str, dict[str, Any]] = {}
        if wanted:
            sql = (
                "SELECT id, name, value FROM (SELECT c.id AS id, t.name AS name, "
                "t.value AS value, row_number() OVER (PARTITION BY c.cluster, t.name "
                f"ORDER BY {LATEST_TRAIT_FIRST}) AS latest "
                "FROM customers c JOIN nodes n ON n.cluster = c.cluster "
                f"JOIN traits t ON t.node = n.id WHERE t.name IN ({_marks(len(wanted))}) "
                "AND c.id IN ({marks})) WHERE latest = 1 ORDER BY id, name"
            )
            rows = await self._loop_read(
                lambda db: self._select_in(sql, list(customer_ids), *wanted, db=db)
            )
            for cid, name, value in rows:
                found.setdefault(cid, {})[name] = json_value(value)
        return {cid: {} for cid in customer_ids} | found

    async def consents_of(self, customer_ids: Sequence[str]) -> dict[str, list[ConsentRecord]]:
        return await self._of_customers(customer_ids, self._consents_in)

    def _consents_in(
        self, clusters: dict[int, str], db: sqlite3.Connection
    ) -> dict[str, list[ConsentRecord]]:
        result: dict[str, list[ConsentRecord]] = {}
        for (
            cluster,
            key,
            purpose,
            status,
            at,
            expires,
            source,
            event_id,
            recorded,
            seq,
        ) in self._select_in(
            "SELECT n.cluster, n.key, s.purpose, s.status, s.at, s.expires_at, s.source, "
            "s.event_id, s.recorded_at, s.rowid FROM nodes n "
            "JOIN consents s ON s.node = n.id "
            "WHERE n.cluster IN ({marks})",
            list(clusters),
            db=db,
            order=itemgetter(8, 9),  # recorded, then rowid
        ):
            result.setdefault(clusters[cluster], []).append(
                ConsentRecord(
                    key,
                    purpose,
                    ConsentStatus(status),
                    dt(at),
                    dt(expires) if expires else None,
                    source,
                    event_id,
                    dt(recorded),
                    seq,
                )
            )
        return result

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
        return await self._of_customers(
            customer_ids, lambda clusters, db: self._interactions_in(clusters, page, db)
        )

    def _interactions_in(
        self,
        clusters: dict[int, str],
        page: InteractionPage,
        db: sqlite3.Connection,
    ) -> dict[str, list[InteractionView]]:
        if not clusters:
            return {}
        # The page's conditions on ``i`` (interactions) and its time bounds on ``p``
        # (performed), where the interaction's time bounds a range of the key.
        on_i, i_params = _interaction_filters(page.types, None)
        on_p: list[str] = []
        p_params: list[Any] = []
        if page.before is not None:
            on_i.append("(i.at, i.ext_id) < (?, ?)")
            i_params += [ts(page.before[0]), page.before[1]]
            on_p.append("p.at <= ?")
            p_params.append(ts(page.before[0]))
        since = "" if page.since is None else ts(page.since)
        # Only a node's ``limit`` newest interactions that pass them can be on the page:
        # each node's are read from the time of its ``limit``-th one on, found by walking
        # its key backwards (this subquery's ``p`` and ``i`` are its own), so a page reads
        # about ``limit`` rows per node instead of all the customer's interactions.
        oldest_wanted = (
            "SELECT p.at FROM performed p "
            + ("JOIN interactions i ON i.id = p.interaction " if on_i else "")
            + f"WHERE {' AND '.join(['p.node = n.id', 'p.at >= ?', *on_p, *on_i])} "
            "ORDER BY p.at DESC LIMIT 1 OFFSET ?"
        )
        oldest_params = [since, *p_params, *i_params, page.limit - 1]
        where = [f"n.cluster IN ({_marks(len(clusters))})", *on_p, *on_i]
        found = db.execute(
            "SELECT n.cluster, i.id, i.ext_id, i.type, i.channel, i.at, i.source, i.properties, "
            "i.event_id FROM nodes n JOIN performed p ON p.node = n.id "
            # ``since`` joins the newest wanted in one lower bound: SQLite bounds a range
            # by one of several, and by ``since`` alone read all interactions since then.
            f"AND p.at >= coalesce(({oldest_wanted}), ?) "
            "JOIN interactions i ON i.id = p.interaction "
            f"WHERE {' AND '.join(where)}",
            (*oldest_params, since, *clusters, *p_params, *i_params),
        ).fetchall()
        # Those few are ranked here: each interaction once per customer (several of its
        # nodes may have performed it), newest first, ties by id (text compares as SQLite's
        # BINARY does: UTF-8 bytes and code points sort alike).
        candidates: dict[int, dict[int, tuple[Any, ...]]] = {}
        for row in found:
            candidates.setdefault(row[0], {})[row[1]] = row
        newest_first = itemgetter(5, 2)  # time, then id; sorted in reverse
        pages = {
            cluster: sorted(rows.values(), key=newest_first, reverse=True)[: page.limit]
            for cluster, rows in candidates.items()
        }
        keys = self._interaction_keys([r[1] for rows in pages.values() for r in rows], db)
        result: dict[str, list[InteractionView]] = {}
        for cluster, rows in pages.items():
            result[clusters[cluster]] = [
                InteractionView(
                    ext,
                    kind,
                    channel,
                    dt(at),
                    source,
                    json_value(props),
                    event_id,
                    tuple(keys.get(iid, ())),
                )
                for _, iid, ext, kind, channel, at, source, props, event_id in rows
            ]
        return result

    def _interaction_keys(self, ids: Sequence[int], db: sqlite3.Connection) -> dict[int, list[str]]:
        result: dict[int, list[str]] = {}
        for iid, key in self._select_in(
            "SELECT p.interaction, n.key FROM performed p JOIN nodes n ON n.id = p.node "
            "WHERE p.interaction IN ({marks})",
            list(ids),
            db=db,
            order=itemgetter(1),
        ):
            result.setdefault(iid, []).append(key)
        return result

    async def count_interactions(
        self,
        customer_ids: Sequence[str],
        *,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        where, params = _interaction_filters(types, since)  # marks before the ids'
        filtered = " JOIN interactions i ON i.id = p.interaction" if params else ""
        where.append("c.id IN ({marks})")
        sql = (
            "SELECT c.id, count(DISTINCT p.interaction) FROM customers c "
            "JOIN nodes n ON n.cluster = c.cluster JOIN performed p ON p.node = n.id"
            f"{filtered} WHERE {' AND '.join(where)} GROUP BY c.id"
        )
        rows = await self._loop_read(
            lambda db: self._select_in(sql, list(customer_ids), *params, db=db)
        )
        return dict.fromkeys(customer_ids, 0) | dict(rows)

    async def component(self, customer_id: str) -> Component:
        with self._read():
            return self._component(customer_id)

    def _component(self, customer_id: str) -> Component:
        records = self._customer_records([customer_id])
        if customer_id not in records:
            raise NotFound(f"no customer {customer_id!r}")
        cluster = self._db.execute(
            "SELECT cluster FROM customers WHERE id = ?", (customer_id,)
        ).fetchone()[0]
        nodes = [
            NodeRecord(
                key, kind, value, customer_id, json_value(attrs) if attrs else {}, dt(created)
            )
            for key, kind, value, attrs, created in self._db.execute(
                "SELECT key, kind, value, attrs, created_at FROM nodes WHERE cluster = ? "
                "ORDER BY key",
                (cluster,),
            )
        ]
        links = self._links(
            "JOIN nodes na ON na.id = l.a JOIN nodes nb ON nb.id = l.b "
            "WHERE na.cluster = ? AND l.accepted = 1",
            (cluster,),
        )
        return Component(records[customer_id], nodes, links)

    def _links(self, where: str, params: Sequence[Any]) -> list[Link]:
        return [
            Link(a, b, source, dt(at), event_id, bool(accepted), rule)
            for a, b, source, at, event_id, accepted, rule in self._db.execute(
                "SELECT na.key, nb.key, l.source, l.at, l.event_id, l.accepted, l.rule "
                f"FROM links l {where}",
                params,
            )
        ]

    async def links_of(self, keys: Sequence[str]) -> list[Link]:
        with self._read():
            ids = [
                r[0]
                for r in self._select_in("SELECT id FROM nodes WHERE key IN ({marks})", list(keys))
            ]
            found: list[Link] = []
            for chunk in _chunks(ids, MAX_PARAMS // 2):
                m = _marks(len(chunk))
                found += self._links(
                    "JOIN nodes na ON na.id = l.a JOIN nodes nb ON nb.id = l.b "
                    f"WHERE l.a IN ({m}) OR l.b IN ({m})",
                    (*chunk, *chunk),
                )
        return list({(k.a, k.b): k for k in found}.values())

    async def rejected_links(
        self, *, limit: int, before: tuple[datetime, str, str] | None = None
    ) -> list[Link]:
        where, params = "WHERE l.accepted = 0", []
        if before is not None:
            where += " AND (l.last_at, na.key, nb.key) < (?, ?, ?)"
            params = [ts(before[0]), before[1], before[2]]
        # The keys in the order make SQLite read and sort every refused link for a page.
        rows = await self._loop_read(
            lambda db: db.execute(
                "SELECT na.key, nb.key, l.source, l.last_at, l.event_id, l.rule FROM links l "
                "JOIN nodes na ON na.id = l.a JOIN nodes nb ON nb.id = l.b "
                f"{where} ORDER BY l.last_at DESC, na.key DESC, nb.key DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        )
        return [Link(a, b, s, dt(at), e, False, rule) for a, b, s, at, e, rule in rows]

    async def count_rejected_links(self) -> int:
        return await self._loop_read(
            partial(_count, "SELECT count(*) FROM links WHERE accepted = 0", ())
        )

    # ---- segments (:mod:`idgraph.store.sqlite_segments`) ---------------------------------

    async def segment_page(
        self,
        query: SegmentQuery,
        *,
        first: int,
        after: tuple[datetime, str] | None = None,
        sort: SegmentSort = SegmentSort.UPDATED_AT_DESC,
    ) -> SegmentPage:
        def read(db: sqlite3.Connection) -> SegmentPage:
            ids, has_next, total = sqlite_segments.page(
                db, query, first=first, after=after, sort=sort
            )
            if total is None:
                total = sqlite_segments.count(db, query)
            records = self._customer_records(ids, db)
            return SegmentPage([records[cid] for cid in ids], has_next, total)

        return await self._scan(read)

    async def count_segment(self, query: SegmentQuery) -> int:
        return await self._scan(lambda db: sqlite_segments.count(db, query))

    async def iter_segment(
        self, query: SegmentQuery, batch_size: int = 1_000
    ) -> AsyncIterator[list[CustomerRecord]]:
        def batch(db: sqlite3.Connection, last: str) -> list[CustomerRecord]:
            ids = sqlite_segments.ids_after(db, query, last, batch_size)
            records = self._customer_records(ids, db)
            return [records[cid] for cid in ids]

        last = ""
        while records := await self._scan(partial(batch, last=last)):
            last = records[-1].id
            yield records

    async def _scan(
        self, read: Callable[[sqlite3.Connection], T], *, budget: float | None = BUDGET_SECONDS
    ) -> T:
        """Run ``read``, a read that may visit every customer or a whole table, in one
        read transaction, stopped after ``budget`` seconds (None: no limit).

        A file store runs it on a connection and a thread of its own, one scan at a
        time: the event loop goes on serving other requests meanwhile, and costly scans
        queue among themselves without taking the threads the audit writer uses."""
        if self.path == ":memory:":  # another connection would open another database
            with self._read() as db, sqlite_segments.budget(db, budget):
                return read(db)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._scanner, partial(self._scan_in_thread, read, budget)
        )

    def _scan_in_thread(self, read: Callable[[sqlite3.Connection], T], budget: float | None) -> T:
        if self._scan_db is None:
            self._scan_db = _connect(self.path)
            self._scan_db.execute("PRAGMA query_only = ON")
            sqlite_segments.register(self._scan_db)
        with (
            self._transaction("BEGIN", self._scan_db) as db,
            sqlite_segments.budget(db, budget),
        ):
            return read(db)

    async def _loop_read(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read`` on the event loop, where nearly every read of customers' data takes
        well under a millisecond; one that runs past ``LOOP_STEPS`` of SQLite's work (a
        customer with tens of thousands of interactions: ~0.4 s for 100,000) is stopped
        and run again on the scan thread, so that the event loop serves other requests
        meanwhile."""
        try:
            with (
                self._read() as db,
                sqlite_segments.stopped_when(db, lambda: True, LOOP_STEPS, _TooLongForTheLoop()),
            ):
                return read(db)
        except _TooLongForTheLoop:
            return await self._scan(read, budget=None)

    async def put_segment(self, segment: SavedSegment) -> None:
        row = (segment.name, sorted_json(segment.filter), segment.description)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?)",
                (*row, ts(segment.created_at)),
            )

    async def segments(self) -> list[SavedSegment]:
        rows = self._db.execute("SELECT * FROM segments ORDER BY name")
        return [_saved_segment(row) for row in rows]

    async def segment(self, name: str) -> SavedSegment | None:
        row = self._db.execute("SELECT * FROM segments WHERE name = ?", (name,)).fetchone()
        return None if row is None else _saved_segment(row)

    async def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    async def put_meta(self, name: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    async def delete_segment(self, name: str) -> None:
        with self._write() as db:
            if db.execute("DELETE FROM segments WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no saved segment {name!r}")

    # ---- whole graph -----------------------------------------------------------------

    async def _pages(self, sql: str, batch_size: int) -> AsyncIterator[list[Any]]:
        """Pages of ``sql``, which selects an integer key first and filters on ``> ?``."""
        last: Any = -1
        while True:
            rows = self._db.execute(sql, (last, batch_size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    async def iter_nodes(self, batch_size: int = 10_000) -> AsyncIterator[list[NodeRecord]]:
        async for rows in self._pages(
            "SELECT n.id, n.key, n.kind, n.value, c.id, n.attrs, n.created_at FROM nodes n "
            "JOIN customers c ON c.cluster = n.cluster WHERE n.id > ? ORDER BY n.id LIMIT ?",
            batch_size,
        ):
            yield [
                NodeRecord(key, kind, value, cid, json_value(attrs) if attrs else {}, dt(created))
                for _, key, kind, value, cid, attrs, created in rows
            ]

    async def iter_links(self, batch_size: int = 10_000) -> AsyncIterator[list[Link]]:
        last = (-1, -1)
        while True:
            rows = self._db.execute(
                "SELECT l.a, l.b, na.key, nb.key, l.source, l.at, l.event_id, l.accepted, l.rule "
                "FROM links l JOIN nodes na ON na.id = l.a JOIN nodes nb ON nb.id = l.b "
                "WHERE (l.a, l.b) > (?, ?) ORDER BY l.a, l.b LIMIT ?",
                (*last, batch_size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][:2]
            yield [
                Link(a, b, source, dt(at), event_id, bool(accepted), rule)
                for _, _, a, b, source, at, event_id, accepted, rule in rows
            ]

    async def iter_customers(self, batch_size: int = 10_000) -> AsyncIterator[list[CustomerRecord]]:
        async for rows in self._pages(
            "SELECT cluster, id FROM customers WHERE cluster > ? ORDER BY cluster LIMIT ?",
            batch_size,
        ):
            with self._read():
                records = self._customer_records([cid for _, cid in rows])
            yield [records[cid] for _, cid in rows]

    async def aliases(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT alias, customer_id FROM aliases"))

    async def bans(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b in self._db.execute("SELECT a, b FROM bans ORDER BY a, b")]

    async def counts(self) -> dict[str, int]:
        """Off the event loop, like a scan: SQLite counts a table's rows by reading all of
        them (~70 ms for a million events, 0.2 s and more when the file is not cached),
        and ``GET /metrics`` asks at every scrape."""
        return await self._scan(_counts, budget=None)

    async def shared_attachments(self) -> list[SharedAttachment]:
        with self._read():
            return self._shared_attachments()

    def _shared_attachments(self) -> list[SharedAttachment]:
        found: dict[tuple[str, str], list[str]] = {}
        for what, sql in (
            (
                "interaction",
                "SELECT i.ext_id, n.key FROM performed p JOIN interactions i "
                "ON i.id = p.interaction JOIN nodes n ON n.id = p.node WHERE p.interaction IN "
                "(SELECT interaction FROM performed GROUP BY interaction HAVING count(*) > 1)",
            ),
            (
                "consent",
                "SELECT DISTINCT s.event_id, n.key FROM consents s JOIN nodes n ON n.id = s.node "
                "WHERE s.event_id IN (SELECT event_id FROM consents GROUP BY event_id "
                "HAVING count(DISTINCT node) > 1)",
            ),
        ):
            for ident, key in self._db.execute(sql):
                found.setdefault((what, ident), []).append(key)
        return [
            SharedAttachment(what, ident, tuple(sorted(keys)))
            for (what, ident), keys in sorted(found.items())
        ]

    async def repair_attachments(self, subject_of: SubjectChooser) -> AttachmentRepair:
        try:
            with self._write() as db:
                drops: dict[str, list[tuple[str, str]]] = {"interaction": [], "consent": []}
                for shared in self._shared_attachments():
                    keep = subject_of(shared)
                    drops[shared.what] += [(shared.id, k) for k in shared.keys if k != keep]
                interactions = db.executemany(
                    "DELETE FROM performed WHERE "
                    "interaction = (SELECT id FROM interactions WHERE ext_id = ?) "
                    "AND node = (SELECT id FROM nodes WHERE key = ?)",
                    drops["interaction"],
                ).rowcount
                consents = db.executemany(
                    "DELETE FROM consents WHERE event_id = ? "
                    "AND node = (SELECT id FROM nodes WHERE key = ?)",
                    drops["consent"],
                ).rowcount
                return AttachmentRepair(interactions, consents)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc

    # ---- erasure, keys, audit ----------------------------------------------------------

    async def forget(self, customer_id: str, at: datetime) -> ErasureReport:
        report = self._forget(customer_id, at)
        self._purge_wal()
        return report

    def _forget(self, customer_id: str, at: datetime) -> ErasureReport:
        self._cache.clear()
        try:
            with self._write() as db:
                row = db.execute(
                    "SELECT cluster FROM customers WHERE id = ?", (customer_id,)
                ).fetchone()
                if row is None:
                    raise NotFound(f"no customer {customer_id!r}")
                cluster = row[0]
                nodes = db.execute(
                    "SELECT id, key, kind FROM nodes WHERE cluster = ?", (cluster,)
                ).fetchall()
                ids = [n for n, _, _ in nodes]
                keys = [k for _, k, _ in nodes]
                stamp = ts(at)
                db.executemany(
                    "INSERT OR IGNORE INTO erased VALUES (?, ?)",
                    [(self._erasure.hash(k), stamp) for k in keys],
                )
                db.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)")
                db.execute("DELETE FROM doomed")
                db.executemany("INSERT INTO doomed VALUES (?)", [(i,) for i in ids])
                links = db.execute(
                    "DELETE FROM links WHERE a IN (SELECT id FROM doomed) "
                    "OR b IN (SELECT id FROM doomed)"
                ).rowcount
                self._select_in("DELETE FROM bans WHERE a IN ({marks})", keys)
                self._select_in("DELETE FROM bans WHERE b IN ({marks})", keys)
                traits = db.execute(
                    "DELETE FROM traits WHERE node IN (SELECT id FROM doomed)"
                ).rowcount
                consents = db.execute(
                    "DELETE FROM consents WHERE node IN (SELECT id FROM doomed)"
                ).rowcount
                touched = [
                    r[0]
                    for r in db.execute(
                        "SELECT DISTINCT interaction FROM performed "
                        "WHERE node IN (SELECT id FROM doomed)"
                    )
                ]
                db.execute("DELETE FROM performed WHERE node IN (SELECT id FROM doomed)")
                interactions = 0
                for chunk in _chunks(touched):
                    interactions += db.execute(
                        f"DELETE FROM interactions WHERE id IN ({_marks(len(chunk))}) "
                        "AND id NOT IN (SELECT interaction FROM performed)",
                        chunk,
                    ).rowcount
                aliases = db.execute(
                    "DELETE FROM aliases WHERE customer_id = ?", (customer_id,)
                ).rowcount
                db.execute("DELETE FROM nodes WHERE cluster = ?", (cluster,))
                db.execute("DELETE FROM customers WHERE cluster = ?", (cluster,))
                db.execute("DELETE FROM doomed")
                kinds: dict[str, int] = {}
                for _, _, kind in nodes:
                    kinds[kind] = kinds.get(kind, 0) + 1
                return ErasureReport(
                    customer_id,
                    dict(sorted(kinds.items())),
                    aliases,
                    links,
                    traits,
                    interactions,
                    consents,
                )
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc

    async def erasures(self) -> ErasureRecord:
        hashes = [h for (h,) in self._db.execute("SELECT hash FROM erased ORDER BY hash")]
        return ErasureRecord(hashes, self._erasure.legacy_salt)

    async def iter_event_ids(self, batch_size: int = 10_000) -> AsyncIterator[list[str]]:
        last = ""
        while rows := self._db.execute(
            "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?", (last, batch_size)
        ).fetchall():
            last = rows[-1][0]
            yield [r[0] for r in rows]

    async def put_key(self, key: ApiKey) -> None:
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                    (
                        key.name,
                        key.role.value,
                        json.dumps(list(key.purposes)),
                        key.secret_hash,
                        ts(key.created_at),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise InvalidInput(f"an API key named {key.name!r} exists already") from exc

    async def api_keys(self) -> list[ApiKey]:
        return [_api_key(row) for row in self._db.execute("SELECT * FROM api_keys ORDER BY name")]

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        row = self._db.execute(
            "SELECT * FROM api_keys WHERE secret_hash = ?", (secret_hash,)
        ).fetchone()
        return None if row is None else _api_key(row)

    async def revoke_key(self, name: str, at: datetime) -> None:
        with self._write() as db:
            if not db.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE name = ?",
                (ts(at), name),
            ).rowcount:
                raise NotFound(f"no API key named {name!r}")

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Written on a connection of its own, in a worker thread (a file store): the
        commit, and the WAL checkpoint SQLite runs after some commits (it syncs the
        database file), do not stall the event loop that serves reads meanwhile."""
        rows = [
            (ts(e.at), e.actor, e.purpose, e.operation, e.customer_id, e.detail) for e in entries
        ]
        if self.path == ":memory:":  # another connection would open another database
            self._insert_audit(self._db, rows)
        else:
            await asyncio.to_thread(self._append_audit, rows)

    def _append_audit(self, rows: list[tuple[Any, ...]]) -> None:
        with self._audit_lock:
            if self._audit_db is None:
                self._audit_db = _connect(self.path)
            self._insert_audit(self._audit_db, rows)

    def _insert_audit(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO audit (at, actor, purpose, operation, customer_id, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc

    async def audit_log(
        self, *, customer_id: str | None, limit: int, before: int | None = None
    ) -> list[AuditEntry]:
        where = ["seq < ?"]
        params: list[Any] = [before if before is not None else 2**62]
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        rows = self._db.execute(
            "SELECT seq, at, actor, purpose, operation, customer_id, detail FROM audit "
            f"WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            AuditEntry(dt(at), actor, purpose, op, cid, detail, seq)
            for seq, at, actor, purpose, op, cid, detail in rows
        ]

    async def count_audit(self, *, customer_id: str | None) -> int:
        """Off the event loop, like ``counts``: the log grows by an entry per read."""
        params: tuple[Any, ...]
        if customer_id is None:
            sql, params = "SELECT count(*) FROM audit", ()
        else:
            sql, params = "SELECT count(*) FROM audit WHERE customer_id = ?", (customer_id,)
        return await self._scan(partial(_count, sql, params), budget=None)

    # ---- health report -------------------------------------------------------------------

    async def health(self, now: datetime) -> HealthStats:
        """Whole-table aggregates, off the event loop like a segment scan. No time budget:
        it stops a filter too costly to evaluate, whereas these reads cost what the tables
        hold, no more."""
        return await self._scan(
            lambda db: sqlite_health.read(db, self.path, _counts(db), now), budget=None
        )

    # ---- copies and backups (idgraph.transfer, idgraph.backup) ---------------------

    @asynccontextmanager
    async def consistent_view(self) -> AsyncIterator[SqliteStore]:
        """A snapshot copy of the file (``VACUUM INTO``, one read transaction: writers
        carry on meanwhile), in a private directory beside it, deleted afterwards."""
        parent = None if self.path == ":memory:" else Path(self.path).parent
        with tempfile.TemporaryDirectory(prefix=".idgraph-snapshot-", dir=parent) as tmp:
            copy = str(Path(tmp) / "snapshot.db")
            create_private(copy)  # VACUUM INTO fills an empty file
            try:
                self._db.execute("VACUUM INTO ?", (copy,))
            except sqlite3.Error as exc:
                raise StoreError(f"cannot snapshot SQLite store at {self.path}: {exc}") from exc
            view = SqliteStore(copy, erasure_key=self._erasure_key)
            try:
                yield view
            finally:
                await view.close()

    async def clear(self) -> None:
        with self._write() as db:
            _clear(db)
        self._erasure.legacy_salt = None
        self._cache.clear()

    async def import_all(self, batches: AsyncIterable[ImportBatch], *, clear: bool) -> None:
        """In one write transaction: until it commits, other connections read the store as
        it was (and their writes wait), and a failure or a kill leaves it so. The WAL
        grows by the size of the copy meanwhile."""
        legacy_salt = None if clear else self._erasure.legacy_salt
        try:
            with self._write() as db:
                if clear:
                    _clear(db)
                async for batch in batches:
                    self._import(db, batch)
                    legacy_salt = batch.legacy_salt or legacy_salt
        except sqlite3.Error as exc:
            raise StoreError(
                f"SQLite store at {self.path}: import failed, nothing was written: {exc}"
            ) from exc
        finally:
            self._cache.clear()
        self._erasure.legacy_salt = legacy_salt

    def _import(self, db: sqlite3.Connection, batch: ImportBatch) -> None:
        """One batch, in the transaction of ``db``."""
        at = ts(batch.at)
        self._import_graph(db, batch, at)
        db.executemany(
            "INSERT OR IGNORE INTO bans VALUES (?, ?, ?)",
            [(min(p), max(p), at) for p in batch.bans],
        )
        db.executemany(
            "INSERT OR IGNORE INTO erased VALUES (?, ?)", [(h, at) for h in batch.erased]
        )
        if batch.legacy_salt is not None:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (LEGACY_SALT, batch.legacy_salt)
            )
        db.executemany(
            "INSERT OR IGNORE INTO events VALUES (?, ?)", [(e, at) for e in batch.events]
        )
        db.executemany(
            "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?)",
            [
                (s.name, json.dumps(s.filter), s.description, ts(s.created_at))
                for s in batch.segments
            ],
        )
        db.executemany(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    k.name,
                    k.role.value,
                    json.dumps(list(k.purposes)),
                    k.secret_hash,
                    ts(k.created_at),
                    ts(k.revoked_at) if k.revoked_at else None,
                )
                for k in batch.api_keys
            ],
        )

    def _import_graph(self, db: sqlite3.Connection, batch: ImportBatch, at: str) -> None:
        """Customers, nodes and what hangs off them, with fresh integer ids."""
        cluster = (db.execute("SELECT max(cluster) FROM customers").fetchone()[0] or 0) + 1
        db.executemany(
            "INSERT INTO customers (cluster, id, created_at, updated_at, size, kind_counts, "
            "split_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    cluster + i,
                    c.id,
                    ts(c.created_at),
                    ts(c.updated_at),
                    c.size,
                    counts_to_text(c.kind_counts),
                    c.split_from,
                )
                for i, c in enumerate(batch.customers)
            ],
        )
        db.executemany(
            "INSERT INTO aliases VALUES (?, ?, ?)",
            [(alias, c.id, at) for c in batch.customers for alias in c.aliases],
        )
        clusters = dict(
            self._select_in(
                "SELECT id, cluster FROM customers WHERE id IN ({marks})",
                list({n.customer_id for n in batch.nodes}),
            )
        )
        node_id = (db.execute("SELECT max(id) FROM nodes").fetchone()[0] or 0) + 1
        db.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    node_id + i,
                    n.key,
                    n.kind,
                    n.value,
                    sorted_json(dict(n.attrs)) if n.attrs else None,
                    clusters[n.customer_id],
                    ts(n.created_at),
                )
                for i, n in enumerate(batch.nodes)
            ],
        )
        keys = {t.key for t in batch.traits} | {c.key for c in batch.consents}
        keys |= {k for i in batch.interactions for k in i.keys}
        keys |= {k for link in batch.links for k in (link.a, link.b)}
        known = dict(
            self._select_in("SELECT key, id FROM nodes WHERE key IN ({marks})", list(keys))
        )
        db.executemany(
            "INSERT INTO traits VALUES (?, ?, ?, ?, ?, ?)",
            [
                (known[t.key], t.name, json_text(t.value), t.source, ts(t.at), t.event_id)
                for t in batch.traits
            ],
        )
        _insert_consents(db, batch.consents, known)
        # An interaction attached to several nodes (stores written before every event had
        # one subject) is listed once per customer: its row is written once.
        db.executemany(
            "INSERT INTO interactions (ext_id, type, channel, at, source, properties, "
            "event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ext_id) DO NOTHING",
            [
                (i.id, i.type, i.channel, ts(i.at), i.source, json_text(i.properties), i.event_id)
                for i in batch.interactions
            ],
        )
        # The stored time and id of each: a copy already stored keeps its own time.
        stored = {
            ext: (at, iid)
            for ext, at, iid in self._select_in(
                "SELECT ext_id, at, id FROM interactions WHERE ext_id IN ({marks})",
                list({i.id for i in batch.interactions}),
            )
        }
        db.executemany(
            "INSERT OR IGNORE INTO performed VALUES (?, ?, ?)",
            [(known[k], *stored[i.id]) for i in batch.interactions for k in i.keys],
        )
        db.executemany(
            "INSERT INTO links (a, b, source, at, event_id, accepted, rule, last_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    known[k.a],
                    known[k.b],
                    k.source,
                    ts(k.at),
                    k.event_id,
                    k.accepted,
                    k.rule,
                    ts(k.at),
                )
                for k in batch.links
            ],
        )

    # ---- retention (idgraph.retention) -------------------------------------------------

    async def retention_counts(self, cutoffs: Mapping[Policy, datetime]) -> dict[Policy, int]:
        with self._read() as db:
            return sqlite_retention.counts(db, {p: ts(c) for p, c in cutoffs.items()})

    async def purge_batch(
        self, policy: Policy, cutoff: datetime, *, limit: int, after: str | int | None = None
    ) -> PurgeStep:
        try:
            with self._write() as db:
                step = sqlite_retention.purge_batch(db, policy, ts(cutoff), limit, after)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store at {self.path}: {exc}") from exc
        if step.deleted:  # the write cache may hold deleted nodes or event ids
            self._cache.clear()
        return step


def _insert_consents(
    db: sqlite3.Connection, consents: Iterable[ConsentRecord], node_id: Mapping[str, int]
) -> None:
    """Consent decisions, in the order given: rowid orders those recorded at the same
    time (their ``seq``)."""
    db.executemany(
        "INSERT INTO consents (node, purpose, status, at, expires_at, source, event_id, "
        "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                node_id[c.key],
                c.purpose,
                c.status.value,
                ts(c.at),
                ts(c.expires_at) if c.expires_at else None,
                c.source,
                c.event_id,
                ts(c.recorded_at),
            )
            for c in consents
        ],
    )


class _TooLongForTheLoop(Exception):
    pass


# Store.counts(): name → statement.
COUNTS = {
    "nodes": "SELECT count(*) FROM nodes",
    "customers": "SELECT count(*) FROM customers",
    "links": "SELECT count(*) FROM links",
    "rejected_links": "SELECT count(*) FROM links WHERE accepted = 0",
    "aliases": "SELECT count(*) FROM aliases",
    "interactions": "SELECT count(*) FROM interactions",
    "events": "SELECT count(*) FROM events",
}


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    return {name: _count(sql, (), db) for name, sql in COUNTS.items()}


def _count(sql: str, params: tuple[Any, ...], db: sqlite3.Connection) -> int:
    return int(db.execute(sql, params).fetchone()[0])


def _link_rows(
    links: Iterable[Link], known: dict[str, int], linked: Container[int]
) -> list[list[Any]]:
    """One upsert row per node pair: the first evidence's source, time and event, with
    the verdict of the first accepted evidence (later ones change nothing) or else of
    the last refused one, which is what upserting the links in order would store. Pairs
    in ``linked`` (accepted in the file already) get no row: it would change nothing.
    Rows come in key order."""
    rows: dict[tuple[int, int], list[Any]] = {}
    for k in links:
        pair = (known[k.a], known[k.b])
        if linked and pair_code(*pair) in linked:
            continue
        row = rows.get(pair)
        if row is None:
            at = ts(k.at)
            rows[pair] = [*pair, k.source, at, k.event_id, k.accepted, k.rule, at]
        elif not row[5]:
            row[5], row[6], row[7] = k.accepted, k.rule, ts(k.at)
    return [rows[pair] for pair in sorted(rows)]


def _primary_key(row: tuple[Any, ...]) -> tuple[Any, Any]:
    return row[0], row[1]


def _node_key(new: NewNode) -> str:
    return new.node.key


def _interaction_id(interaction: InteractionRecord) -> str:
    return interaction.id


def _warn_if_shared(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "SQLite store %s is open to other users (mode %s): chmod 600 it (and its "
            "-wal and -shm files)",
            path,
            oct(mode),
        )


def _clear(db: sqlite3.Connection) -> None:
    for table in DATA_TABLES:
        db.execute(f"DELETE FROM {table}")
    db.execute("DELETE FROM meta WHERE name = ?", (LEGACY_SALT,))


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring a file written by an earlier version to :data:`SCHEMA_VERSION`, inside the
    transaction that opens it; refuse a file a newer version wrote."""
    (version,) = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    if version == SCHEMA_VERSION:
        return
    if int(version) > int(SCHEMA_VERSION):
        raise ConfigError(
            f"the SQLite store at {path} has schema version {version}, and this idgraph "
            f"knows versions up to {SCHEMA_VERSION}: a newer idgraph wrote it; run that "
            "version (or a later one)"
        )
    while version in MIGRATIONS:
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        version = str(int(version) + 1)
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (version,))


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    name, role, purposes, secret_hash, created, revoked = row
    return ApiKey(
        name,
        Role(role),
        tuple(json.loads(purposes)),
        secret_hash,
        dt(created),
        dt(revoked) if revoked else None,
    )
