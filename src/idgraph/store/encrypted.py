"""A store decorator that encrypts trait values and interaction properties at rest.

:class:`EncryptedStore` implements the :class:`~idgraph.store.port.Store` port by
delegating to another store (SQLite or Neo4j, unchanged): it seals values on the way in
(``write_batch``'s plan, ``import_all``) and opens them on the way out (profiles,
traits, trait values, interactions); everything else passes through. Identifier values,
trait names and interaction types stay plaintext: they are what the graph looks up,
links and counts by (docs/operations.md, "Encryption at rest").

Copies carry ciphertext: :meth:`EncryptedStore.consistent_view` is the inner store's, so
a backup (or ``export --to`` Neo4j) holds the values sealed, and a restore keeps sealed
values as they are (and seals plaintext ones: restoring an unencrypted backup encrypts
it). A store records the keyring it is sealed with; opened without a data key, or with
another keyring, it refuses to start (:func:`refuse_if_encrypted`,
:meth:`EncryptedStore.open`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime
from typing import Any

from idgraph.domain.access import ApiKey, AuditEntry, ErasureReport
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
from idgraph.domain.profile import merge_traits
from idgraph.domain.retention import Policy, PurgeStep
from idgraph.domain.segment import SavedSegment
from idgraph.encryption.keyring import Keyring
from idgraph.encryption.sealing import Seal, Sealer
from idgraph.errors import ConfigError
from idgraph.store.erasure import ErasureRecord
from idgraph.store.port import (
    ImportBatch,
    Planner,
    Profile,
    ProfileRead,
    SegmentPage,
    SegmentQuery,
    SegmentSort,
    Splitter,
    Store,
    SubjectChooser,
)

KEYRING_META = "encryption_keyring"  # the id of the keyring a store is sealed with


async def refuse_if_encrypted(store: Store) -> None:
    """ConfigError if ``store`` was written with a data key (none is configured)."""
    if await store.meta(KEYRING_META) is not None:
        raise ConfigError(
            f"the store {store.url} is encrypted at rest: configure its data key "
            "(IDGRAPH_DATA_KEY, or IDGRAPH_DATA_KEY_FILE / [encryption] data_key_file)"
        )


class EncryptedStore:
    """``inner`` with trait values and interaction properties sealed by ``keyring``."""

    def __init__(self, inner: Store, keyring: Keyring) -> None:
        self.inner = inner
        self.url = inner.url
        self.keyring = keyring
        self._sealer = Sealer(keyring)

    @classmethod
    async def open(cls, inner: Store, keyring: Keyring) -> EncryptedStore:
        """The store sealed by ``keyring``: a store sealed by another keyring, or one that
        holds values written without a key, is refused (ConfigError); an empty store is
        marked as sealed by this keyring."""
        recorded = await inner.meta(KEYRING_META)
        if recorded is None:
            counts = await inner.counts()
            if counts.get("nodes") or counts.get("interactions"):
                raise ConfigError(
                    f"the store {inner.url} holds data written without a data key: back it "
                    "up, and restore the backup into a new store with the key (docs/"
                    "operations.md, Encryption at rest)"
                )
            await inner.put_meta(KEYRING_META, keyring.id)
        elif recorded != keyring.id:
            raise ConfigError(
                f"the store {inner.url} was encrypted with another keyring than "
                f"{keyring.path} (keyring {recorded}, not {keyring.id})"
            )
        return cls(inner, keyring)

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self.keyring.close()

    async def ping(self) -> None:
        await self.inner.ping()

    def bulk_writes(self) -> AbstractContextManager[None]:
        return self.inner.bulk_writes()

    # ---- writes: sealed on the way in ------------------------------------------------

    async def write_batch(
        self, keys: Collection[str], event_ids: Collection[str], planner: Planner
    ) -> ResolutionPlan:
        planned: list[ResolutionPlan] = []

        def sealing_planner(snapshot: Snapshot) -> ResolutionPlan:
            plan = planner(snapshot)
            planned[:] = [plan]
            return dataclasses.replace(
                plan,
                traits=self._sealer.seal_traits(plan.traits),
                interactions=self._sealer.seal_interactions(plan.interactions),
            )

        await self.inner.write_batch(keys, event_ids, sealing_planner)
        return planned[0]  # as planned, in plaintext, for the caller's outcomes

    async def import_all(self, batches: AsyncIterable[ImportBatch], *, clear: bool) -> None:
        """Values sealed by this keyring (or shredded from it) are kept as they are, so a
        backup restores with its ciphertext; plaintext ones (a backup of a store without a
        data key) are sealed now. A value sealed by another keyring fails the copy with a
        ConfigError: sealing it again would store text that never opens."""
        await self.inner.import_all((self._sealed(batch) async for batch in batches), clear=clear)

    def _sealed(self, batch: ImportBatch) -> ImportBatch:
        sealer = self._sealer
        trait_states = [sealer.trait_state(t) for t in batch.traits]
        view_states = [sealer.interaction_state(v) for v in batch.interactions]
        if Seal.FOREIGN in trait_states or Seal.FOREIGN in view_states:
            raise ConfigError(
                "the copy holds values sealed by another keyring than "
                f"{self.keyring.path}: restore with the keyring file (and data key) of the "
                "store the backup was taken from (docs/operations.md, "
                '"Encryption at rest")'
            )
        traits = [t for t, s in zip(batch.traits, trait_states, strict=True) if s is Seal.PLAIN]
        views = [v for v, s in zip(batch.interactions, view_states, strict=True) if s is Seal.PLAIN]
        sealed_traits = dict(zip(map(id, traits), sealer.seal_traits(traits), strict=True))
        sealed_views = dict(zip(map(id, views), sealer.seal_views(views), strict=True))
        return dataclasses.replace(
            batch,
            traits=[sealed_traits.get(id(t), t) for t in batch.traits],
            interactions=[sealed_views.get(id(v), v) for v in batch.interactions],
        )

    async def rewrite_customer(self, customer_id: str, splitter: Splitter) -> SplitPlan:
        return await self.inner.rewrite_customer(customer_id, splitter)

    # ---- reads: opened on the way out -------------------------------------------------

    async def profiles(self, keys: Sequence[str], read: ProfileRead) -> dict[str, Profile]:
        found = await self.inner.profiles(keys, read)
        opened: dict[int, Profile] = {}  # keys of one customer share its Profile
        for profile in found.values():
            if id(profile) not in opened:
                opened[id(profile)] = dataclasses.replace(
                    profile,
                    traits=None
                    if profile.traits is None
                    else self._sealer.open_traits(profile.traits),
                    interactions=None
                    if profile.interactions is None
                    else self._sealer.open_interactions(profile.interactions),
                )
        return {key: opened[id(profile)] for key, profile in found.items()}

    async def traits_of(self, customer_ids: Sequence[str]) -> dict[str, list[TraitRecord]]:
        found = await self.inner.traits_of(customer_ids)
        return {cid: self._sealer.open_traits(traits) for cid, traits in found.items()}

    async def trait_values(
        self, customer_ids: Sequence[str], names: Collection[str]
    ) -> dict[str, dict[str, Any]]:
        """From :meth:`traits_of`: a sealed value opens only with its node key, which the
        inner store's merged values no longer carry."""
        wanted = set(names)
        found = await self.traits_of(customer_ids)
        return {
            cid: {
                name: t.value
                for name, t in merge_traits(
                    t for t in found.get(cid, []) if t.name in wanted
                ).items()
            }
            for cid in customer_ids
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
        found = await self.inner.interactions_of(
            customer_ids, limit=limit, before=before, types=types, since=since
        )
        return {cid: self._sealer.open_interactions(views) for cid, views in found.items()}

    # ---- erasure: the store's, then the erased nodes' keys -----------------------------

    async def forget(self, customer_id: str, at: datetime) -> ErasureReport:
        """Erase as the inner store does, then shred the erased nodes' DEKs: their values
        stay unreadable in any copy of the store, backups taken before included."""
        nodes = (await self.inner.nodes_of([customer_id])).get(customer_id, [])
        report = await self.inner.forget(customer_id, at)
        self.keyring.shred(n.key for n in nodes)
        return report

    async def purge_batch(
        self, policy: Policy, cutoff: datetime, *, limit: int, after: str | int | None = None
    ) -> PurgeStep:
        """Purge as the inner store does, then shred the deleted nodes' DEKs, as
        :meth:`forget` does."""
        step = await self.inner.purge_batch(policy, cutoff, limit=limit, after=after)
        self.keyring.shred(step.removed_nodes)
        return step

    async def retention_counts(self, cutoffs: Mapping[Policy, datetime]) -> dict[Policy, int]:
        return await self.inner.retention_counts(cutoffs)

    # ---- copies: ciphertext as stored ------------------------------------------------

    def consistent_view(self) -> AbstractAsyncContextManager[Store]:
        """The inner store's view: a backup or copy read from it keeps values sealed."""
        return self.inner.consistent_view()

    async def clear(self) -> None:
        await self.inner.clear()  # keeps the meta: the store stays sealed by this keyring

    # ---- everything else passes through ------------------------------------------------

    async def customer_ids_of(self, keys: Sequence[str]) -> dict[str, str]:
        return await self.inner.customer_ids_of(keys)

    async def customers(self, ids: Sequence[str]) -> dict[str, CustomerRecord]:
        return await self.inner.customers(ids)

    async def nodes_of(self, customer_ids: Sequence[str]) -> dict[str, list[NodeRecord]]:
        return await self.inner.nodes_of(customer_ids)

    async def consents_of(self, customer_ids: Sequence[str]) -> dict[str, list[ConsentRecord]]:
        return await self.inner.consents_of(customer_ids)

    async def count_interactions(
        self,
        customer_ids: Sequence[str],
        *,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, int]:
        return await self.inner.count_interactions(customer_ids, types=types, since=since)

    async def component(self, customer_id: str) -> Component:
        return await self.inner.component(customer_id)

    async def links_of(self, keys: Sequence[str]) -> list[Link]:
        return await self.inner.links_of(keys)

    async def rejected_links(
        self, *, limit: int, before: tuple[datetime, str, str] | None = None
    ) -> list[Link]:
        return await self.inner.rejected_links(limit=limit, before=before)

    async def count_rejected_links(self) -> int:
        return await self.inner.count_rejected_links()

    async def segment_page(
        self,
        query: SegmentQuery,
        *,
        first: int,
        after: tuple[datetime, str] | None = None,
        sort: SegmentSort = SegmentSort.UPDATED_AT_DESC,
    ) -> SegmentPage:
        return await self.inner.segment_page(query, first=first, after=after, sort=sort)

    async def count_segment(self, query: SegmentQuery) -> int:
        return await self.inner.count_segment(query)

    def iter_segment(
        self, query: SegmentQuery, batch_size: int = 1_000
    ) -> AsyncIterator[list[CustomerRecord]]:
        return self.inner.iter_segment(query, batch_size)

    async def put_segment(self, segment: SavedSegment) -> None:
        await self.inner.put_segment(segment)

    async def segments(self) -> list[SavedSegment]:
        return await self.inner.segments()

    async def segment(self, name: str) -> SavedSegment | None:
        return await self.inner.segment(name)

    async def delete_segment(self, name: str) -> None:
        await self.inner.delete_segment(name)

    def iter_nodes(self, batch_size: int = 10_000) -> AsyncIterator[list[NodeRecord]]:
        return self.inner.iter_nodes(batch_size)

    def iter_links(self, batch_size: int = 10_000) -> AsyncIterator[list[Link]]:
        return self.inner.iter_links(batch_size)

    def iter_customers(self, batch_size: int = 10_000) -> AsyncIterator[list[CustomerRecord]]:
        return self.inner.iter_customers(batch_size)

    async def aliases(self) -> dict[str, str]:
        return await self.inner.aliases()

    async def bans(self) -> list[tuple[str, str]]:
        return await self.inner.bans()

    async def counts(self) -> dict[str, int]:
        return await self.inner.counts()

    async def shared_attachments(self) -> list[SharedAttachment]:
        return await self.inner.shared_attachments()

    async def repair_attachments(self, subject_of: SubjectChooser) -> AttachmentRepair:
        return await self.inner.repair_attachments(subject_of)

    async def erasures(self) -> ErasureRecord:
        return await self.inner.erasures()

    def iter_event_ids(self, batch_size: int = 10_000) -> AsyncIterator[list[str]]:
        return self.inner.iter_event_ids(batch_size)

    async def put_key(self, key: ApiKey) -> None:
        await self.inner.put_key(key)

    async def api_keys(self) -> list[ApiKey]:
        return await self.inner.api_keys()

    async def key_by_hash(self, secret_hash: str) -> ApiKey | None:
        return await self.inner.key_by_hash(secret_hash)

    async def revoke_key(self, name: str, at: datetime) -> None:
        await self.inner.revoke_key(name, at)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        await self.inner.append_audit(entries)

    async def audit_log(
        self, *, customer_id: str | None, limit: int, before: int | None = None
    ) -> list[AuditEntry]:
        return await self.inner.audit_log(customer_id=customer_id, limit=limit, before=before)

    async def count_audit(self, *, customer_id: str | None) -> int:
        return await self.inner.count_audit(customer_id=customer_id)

    async def health(self, now: datetime) -> HealthStats:
        return await self.inner.health(now)

    async def meta(self, name: str) -> str | None:
        return await self.inner.meta(name)

    async def put_meta(self, name: str, value: str) -> None:
        await self.inner.put_meta(name, value)
