"""The storage port: what idgraph needs from a graph store, and nothing else.

Every adapter (``sqlite``, ``neo4j``) implements :class:`Store` and passes the contract
suite in ``tests/contract``. Adapters raise only :mod:`idgraph.errors` types; they
translate driver errors with ``raise … from exc``.

Contract, in words:

- Identity nodes are unique by key. Every node belongs to exactly one live customer.
- Links are unique per pair ``(a, b)`` with ``a < b``. A pair seen again keeps its first
  evidence (source, at, event id) and becomes accepted if the new evidence is accepted.
- ``write_batch`` and ``rewrite_customer`` are atomic: they read, call the pure function
  they are given (which may be called again if the adapter retries on a conflict), and
  apply its plan in one transaction. Concurrent writers never lose a merge.
- A merge makes the absorbed customer id an alias of the survivor, and every alias of
  the absorbed id an alias of the survivor: an alias always names a live customer.
- An event's traits, interaction and consent decision are stored on the one identity
  node the plan names (the event's subject), and on no other; a customer's data is the
  data of its nodes, so it follows them through merges, splits and erasure.
- Reads never see half of a write.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from idgraph.domain.access import ApiKey, AuditEntry, ErasureReport
from idgraph.domain.consent import Purpose
from idgraph.domain.health import HealthStats
from idgraph.domain.model import (
    AttachmentRepair,
    Component,
    ConsentRecord,
    CustomerRecord,
    InteractionView,
    Link,
    NodeRecord,
    ResolutionPlan,
    SharedAttachment,
    Snapshot,
    SplitPlan,
    TraitRecord,
)
from idgraph.domain.retention import Policy, PurgeStep
from idgraph.domain.segment import Filter, SavedSegment
from idgraph.store.erasure import ErasureRecord

Planner = Callable[[Snapshot], ResolutionPlan]
Splitter = Callable[[Component], SplitPlan]
SubjectChooser = Callable[[SharedAttachment], str]


@dataclass(frozen=True, slots=True)
class InteractionPage:
    """One page of a customer's interactions, as :meth:`Store.interactions_of` takes it."""

    limit: int
    before: tuple[datetime, str] | None = None
    types: tuple[str, ...] | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProfileRead:
    """Which parts of a customer :meth:`Store.profiles` reads besides its record."""

    nodes: bool = False
    consents: bool = False
    traits: bool = False
    interactions: InteractionPage | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer and the parts of it a :class:`ProfileRead` asked for (None: not asked),
    each exactly as the store's read of that part alone returns it."""

    customer: CustomerRecord
    nodes: list[NodeRecord] | None = None
    consents: list[ConsentRecord] | None = None
    traits: list[TraitRecord] | None = None
    interactions: list[InteractionView] | None = None


class SegmentSort(StrEnum):
    """The orders a segment is listed in; ties go to the customer id, in the same
    direction."""

    UPDATED_AT_DESC = "updated_at_desc"
    UPDATED_AT_ASC = "updated_at_asc"
    CREATED_AT_DESC = "created_at_desc"
    CREATED_AT_ASC = "created_at_asc"

    @property
    def descending(self) -> bool:
        return self.value.endswith("_desc")

    @property
    def by_created(self) -> bool:
        return self.value.startswith("created_at")


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    """Which customers a segment read selects, as :mod:`idgraph.domain.segment` defines:
    those ``filter`` matches (``purposes``, the configured ones, give consent conditions
    their defaults; ``now`` decides which grants have expired) and, with ``visible_to``,
    that this purpose may see at all (:func:`idgraph.domain.segment.visible`)."""

    filter: Filter
    purposes: tuple[Purpose, ...]
    now: datetime
    visible_to: Purpose | None = None


@dataclass(frozen=True, slots=True)
class SegmentPage:
    """One page of a segment: its customers in the sort order, whether more follow,
    and how many customers the whole segment holds (in the same read)."""

    customers: list[CustomerRecord]
    has_next: bool
    total_count: int


@dataclass(slots=True)
class ImportBatch:
    """Records of another store (or of a backup), one batch of :meth:`Store.import_all`.

    Every customer a node names is in this batch or an earlier one; every node a trait,
    consent, interaction or link names likewise. Consents are in the order they were
    recorded (their ``seq`` is not kept). What the records do not carry (the time of
    each alias, ban, erasure and applied event id) is set to ``at``."""

    at: datetime
    customers: list[CustomerRecord] = field(default_factory=list)
    nodes: list[NodeRecord] = field(default_factory=list)
    traits: list[TraitRecord] = field(default_factory=list)
    consents: list[ConsentRecord] = field(default_factory=list)
    interactions: list[InteractionView] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    bans: list[tuple[str, str]] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    legacy_salt: str | None = None
    events: list[str] = field(default_factory=list)
    segments: list[SavedSegment] = field(default_factory=list)
    api_keys: list[ApiKey] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(
            len(part)
            for part in (
                self.customers,
                self.nodes,
                self.traits,
                self.consents,
                self.interactions,
                self.links,
                self.bans,
                self.erased,
                self.events,
                self.segments,
                self.api_keys,
            )
        )


class Store(Protocol):
    """An identity graph store. All methods are safe to call concurrently."""

    url: str

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers."""

    def bulk_writes(self) -> AbstractContextManager[None]:
        """For a bulk ingest: inside, ``write_batch`` may return before its commit is
        done, so that the caller prepares the next batch meanwhile. Every later call
        waits for it, and raises its error (the batch is then not applied, whole);
        leaving waits for the last commit."""

    # ---- writes ------------------------------------------------------------------

    async def write_batch(
        self, keys: Collection[str], event_ids: Collection[str], planner: Planner
    ) -> ResolutionPlan:
        """In one write transaction: read the :class:`Snapshot` for these identity keys
        and event ids, call ``planner(snapshot)``, apply the plan, commit; return it.

        The snapshot holds every existing key's customer, those customers' states, bans
        between them, which event ids were applied before, and which keys were erased.
        """

    async def rewrite_customer(self, customer_id: str, splitter: Splitter) -> SplitPlan:
        """In one write transaction: load the customer's :class:`Component` (nodes and
        accepted links), call ``splitter(component)``, apply the :class:`SplitPlan`:
        reject its links (with their rule), record its ban, move each new part's nodes
        to a new customer recording ``split_from``, update sizes and kind counts.
        Raises :class:`NotFound` for an unknown customer id."""

    # ---- reads -------------------------------------------------------------------

    async def customer_ids_of(self, keys: Sequence[str]) -> dict[str, str]:
        """Map each known identity key to its customer id; unknown keys are left out."""

    async def profiles(self, keys: Sequence[str], read: ProfileRead) -> dict[str, Profile]:
        """In one read transaction (one consistent view): for each known identity key,
        its customer and the parts ``read`` asks for, each as :meth:`nodes_of`,
        :meth:`consents_of`, :meth:`traits_of` and :meth:`interactions_of` return it.
        Unknown keys are left out. What one profile needs costs one call, not one per
        part; keys sharing a customer share its :class:`Profile`."""

    async def customers(self, ids: Sequence[str]) -> dict[str, CustomerRecord]:
        """Customers by id or alias: the result maps each *requested* id that is known
        to the live customer it names (with its aliases)."""

    async def nodes_of(self, customer_ids: Sequence[str]) -> dict[str, list[NodeRecord]]:
        """Identity nodes of each live customer, ordered by key."""

    async def traits_of(self, customer_ids: Sequence[str]) -> dict[str, list[TraitRecord]]:
        """For each customer, the latest report of each (identity node, trait name)."""

    async def trait_values(
        self, customer_ids: Sequence[str], names: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        """For each customer, the merged value of each trait in ``names`` it has, by
        name: the report :func:`idgraph.domain.profile.merge_traits` picks, read without
        the others (an export's trait columns). Unknown customers map to ``{}``."""

    async def consents_of(self, customer_ids: Sequence[str]) -> dict[str, list[ConsentRecord]]:
        """Every consent decision recorded on each customer's nodes, in the order idgraph
        recorded them (:attr:`ConsentRecord.order`, oldest first); ``seq`` increases
        with the order of recording among decisions with the same ``recorded_at``."""

    async def interactions_of(
        self,
        customer_ids: Sequence[str],
        *,
        limit: int,
        before: tuple[datetime, str] | None = None,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, list[InteractionView]]:
        """For each customer, the interactions its nodes performed, newest first, ordered
        by ``(at, id)`` descending, strictly after the ``before`` cursor; at most
        ``limit`` per customer. One call serves a whole page of customers. ``keys`` are
        the nodes an interaction is attached to (its event's subject)."""

    async def count_interactions(
        self,
        customer_ids: Sequence[str],
        *,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        """For each customer, how many interactions its nodes performed; with ``types``
        or ``since``, only those :meth:`interactions_of` would list under the same
        filters."""

    async def component(self, customer_id: str) -> Component:
        """The customer's nodes and the accepted links among them. NotFound if unknown."""

    async def links_of(self, keys: Sequence[str]) -> list[Link]:
        """Every link, accepted or not, with an end in ``keys``."""

    async def rejected_links(
        self, *, limit: int, before: tuple[datetime, str, str] | None = None
    ) -> list[Link]:
        """Links refused by a rule, newest first, ordered by ``(at, a, b)`` descending."""

    async def count_rejected_links(self) -> int:
        """How many links :meth:`rejected_links` lists in all."""

    # ---- segments ------------------------------------------------------------------

    async def segment_page(
        self,
        query: SegmentQuery,
        *,
        first: int,
        after: tuple[datetime, str] | None = None,
        sort: SegmentSort = SegmentSort.UPDATED_AT_DESC,
    ) -> SegmentPage:
        """In one read transaction: the first ``first`` members of the segment in
        ``sort`` order, strictly after the position ``after`` (the sorted time and the
        customer id of the last customer of the previous page), and the segment's total
        count. Members are exactly the live customers for which
        :func:`idgraph.domain.segment.matches` holds over their summary (and, with
        ``query.visible_to``, :func:`~idgraph.domain.segment.visible` holds), computed
        from the store as it is now: merges, splits, erasure and consent changes count
        as soon as they are committed."""

    async def count_segment(self, query: SegmentQuery) -> int:
        """How many customers :meth:`segment_page` would list in all."""

    def iter_segment(
        self, query: SegmentQuery, batch_size: int = 1_000
    ) -> AsyncIterator[list[CustomerRecord]]:
        """Every member of the segment, in batches, ordered by customer id. Each batch is
        read in one transaction; a customer that changes during the iteration is listed
        at most once, as it was when its batch was read."""

    async def put_segment(self, segment: SavedSegment) -> None:
        """Save a segment, replacing any saved segment of the same name."""

    async def segments(self) -> list[SavedSegment]:
        """Every saved segment, by name."""

    async def segment(self, name: str) -> SavedSegment | None:
        """The saved segment of that name, if any."""

    async def delete_segment(self, name: str) -> None:
        """Delete a saved segment. NotFound if there is none of that name."""

    # ---- whole graph (check, export) ---------------------------------------------

    def iter_nodes(self, batch_size: int = 10_000) -> AsyncIterator[list[NodeRecord]]: ...

    def iter_links(self, batch_size: int = 10_000) -> AsyncIterator[list[Link]]: ...

    def iter_customers(self, batch_size: int = 10_000) -> AsyncIterator[list[CustomerRecord]]: ...

    async def aliases(self) -> dict[str, str]:
        """Every alias id → the customer id it names."""

    async def bans(self) -> list[tuple[str, str]]:
        """Every banned pair of identity keys, ``a < b``."""

    async def counts(self) -> dict[str, int]:
        """Totals: nodes, customers, links, rejected_links, aliases, interactions, events."""

    async def shared_attachments(self) -> list[SharedAttachment]:
        """Interactions attached to more than one identity node, and events whose consent
        decision is recorded on more than one (what earlier versions wrote)."""

    async def repair_attachments(self, subject_of: SubjectChooser) -> AttachmentRepair:
        """In one write transaction: for each of :meth:`shared_attachments`, keep the
        attachment on ``subject_of(attachment)`` only and drop it from the other nodes.
        Returns how many attachments were dropped."""

    # ---- erasure, keys, audit ----------------------------------------------------

    async def forget(self, customer_id: str, at: datetime) -> ErasureReport:
        """In one transaction, remove a live customer and everything of it: identity
        nodes, every link touching them, bans, aliases, traits, consents, interactions
        no other customer performed. Keep the keyed hash of each erased key (the
        :class:`~idgraph.store.erasure.ErasureHasher` of the erasure key the adapter was
        opened with) so later snapshots report those keys in ``erased_keys``, and nothing
        else of them. Once committed, no plaintext of the erased data is left where the
        adapter can reach it (SQLite: overwritten, WAL truncated). NotFound if unknown."""

    async def erasures(self) -> ErasureRecord:
        """Every erased key's keyed hash (and, for a store erased before the keyed hash,
        its legacy salt), so a copy of the store opened with the same secret keeps
        refusing replays of erased identifiers."""

    def iter_event_ids(self, batch_size: int = 10_000) -> AsyncIterator[list[str]]:
        """Every applied event id (for copying a store: replays stay duplicates)."""

    async def put_key(self, key: ApiKey) -> None:
        """Store a new API key. InvalidInput if the name is taken."""

    async def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, by name."""

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None: ...

    async def revoke_key(self, name: str, at: datetime) -> None:
        """Mark a key revoked. NotFound if there is no such key."""

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def audit_log(
        self, *, customer_id: str | None, limit: int, before: int | None = None
    ) -> list[AuditEntry]:
        """Entries newest first (by ``seq`` descending, below ``before``), optionally for
        one customer id."""

    async def count_audit(self, *, customer_id: str | None) -> int:
        """How many entries :meth:`audit_log` lists in all, optionally for one customer."""

    async def health(self, now: datetime) -> HealthStats:
        """The health report's aggregates, in one read (``now`` judges consent expiry)."""

    async def meta(self, name: str) -> str | None:
        """A value the store keeps about itself (not data: no copy or backup carries it),
        set by :meth:`put_meta`; None if unset. ``clear`` keeps it."""

    async def put_meta(self, name: str, value: str) -> None:
        """Set a value :meth:`meta` reads."""

    # ---- copies and backups (idgraph.transfer, idgraph.backup) ---------------------

    def consistent_view(self) -> AbstractAsyncContextManager[Store]:
        """A store to read the whole graph from as of one moment (SQLite: a snapshot copy
        of the file, while writers carry on; Neo4j: reads in one transaction holding the
        writers' lock, so writers wait until it closes — see docs/operations.md)."""

    async def clear(self) -> None:
        """Delete everything the store holds (keeping its schema and :meth:`meta`), to
        restore over it."""

    async def import_all(self, batches: AsyncIterable[ImportBatch], *, clear: bool) -> None:
        """Add a whole copy to the store (empty, once everything it holds is deleted if
        ``clear``), batch after batch, as the records were in the source; a failure
        part-way leaves none of it. Erasure hashes match only if this store was opened
        with the source's erasure key.

        SQLite: all in one transaction, so a failure (or a kill) leaves the store as it
        was. Neo4j, where a large copy cannot be one transaction: the store is marked
        *restore incomplete* first and unmarked last, so that it refuses to open for
        anything but another restore should the process die; on an error the batches
        written are deleted again (best effort) and the mark stays."""

    # ---- retention (idgraph.retention) -----------------------------------------------

    async def retention_counts(self, cutoffs: Mapping[Policy, datetime]) -> dict[Policy, int]:
        """In one read: for each policy, how many rows (customers, for
        ``anonymous_customers``) it would delete now with that cut-off
        (:mod:`idgraph.domain.retention` says which)."""

    async def purge_batch(
        self, policy: Policy, cutoff: datetime, *, limit: int, after: str | int | None = None
    ) -> PurgeStep:
        """In one write transaction: examine at most ``limit`` rows of ``policy``'s kind
        and delete those it would count, keeping every invariant (a customer goes whole,
        with everything on its nodes). ``after`` is the previous batch's ``resume`` (None
        at first); the policy is done when ``resume`` is None. Rows that become eligible
        meanwhile may be left for the next purge."""
