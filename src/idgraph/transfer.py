"""Copy one store into another: the reading side (:func:`read_store`) and the writing
side (:meth:`Store.import_batch`) that ``idgraph export --to neo4j://…`` joins directly
and ``idgraph backup``/``restore`` join through a file (:mod:`idgraph.backup`).

The source is read in batches: customers page by page with everything hanging off them
(aliases, identity nodes, traits, consent history, interactions), then every link (both
ends exist by then), then the bans, the erasure record, the applied event ids, the saved
segments and the API keys (their hashes). Read from :meth:`Store.consistent_view` for
one snapshot of a store that is being written to.

Applied event ids and the erasure record (keyed hashes, and the legacy salt of a store
erased before the HMAC) are copied too, so replaying old events into the copy finds
duplicates, and erased identifiers stay refused — as long as the copy is served with
the same server secret (:mod:`idgraph.secret`): the target is opened with the source's
erasure key, and whoever serves it later must give it the same secret
(``IDGRAPH_SECRET`` or ``IDGRAPH_SECRET_FILE``). Not copied: merge times of aliases, the
time of each ban, erasure and applied event (set to the time of the copy), the refresh
time of a link refused again, and the audit log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import fields
from datetime import datetime

from idgraph.config import Neo4jSettings
from idgraph.domain.model import InteractionView, utcnow
from idgraph.errors import InvalidInput
from idgraph.store.encrypted import KEYRING_META
from idgraph.store.port import ImportBatch, Store

Progress = Callable[[int], object]


async def total_records(source: Store) -> int:
    """What ``progress`` counts up to: customers, identity nodes and links."""
    counts = await source.counts()
    return counts["customers"] + counts["nodes"] + counts["links"]


async def is_empty(store: Store) -> bool:
    """True if ``store`` holds no graph, applied event, erasure record, saved segment
    or API key (what a copy would write into)."""
    counts = await store.counts()
    return not (
        counts["nodes"]
        or counts["customers"]
        or counts["events"]
        or (await store.erasures()).hashes
        or await store.segments()
        or await store.api_keys()
    )


async def export_to_neo4j(
    source: Store,
    url: str,
    settings: Neo4jSettings,
    *,
    erasure_key: bytes,
    replace: bool = False,
    batch_size: int = 5000,
    progress: Progress = lambda n: None,
) -> dict[str, int]:
    """Open the Neo4j store at ``url`` with the source's ``erasure_key`` and copy
    ``source`` (its consistent view) into it. The target must hold no identity nodes
    unless ``replace`` (which wipes it first). Returns what was copied."""
    from idgraph.store.neo4j import Neo4jStore

    target = await Neo4jStore.open(url, settings, erasure_key=erasure_key, clear=replace)
    try:
        existing = await target.counts()
        if existing["nodes"] or existing["customers"]:
            raise InvalidInput(
                f"{url} already holds {existing['nodes']} identity nodes and "
                f"{existing['customers']} customers: pass --replace to wipe it first"
            )
        async with source.consistent_view() as view:
            # The segment methods are the seg-neo4j branch's: this ignore goes with its merge.
            copied = await copy_store(view, target, batch_size=batch_size, progress=progress)
        if (keyring := await source.meta(KEYRING_META)) is not None:
            # The copy holds the values sealed by the source's keyring: it needs it too.
            await target.put_meta(KEYRING_META, keyring)
        return copied
    finally:
        await target.close()


async def copy_store(
    source: Store,
    target: Store,
    *,
    batch_size: int = 5000,
    progress: Progress = lambda n: None,
) -> dict[str, int]:
    """Copy everything :func:`read_store` reads of ``source`` into the empty store
    ``target``; ``progress(n)`` after each batch. Returns what was copied, by part."""
    copied = Tally()
    async for batch in read_store(source, batch_size, at=utcnow()):
        await target.import_batch(batch)
        copied.add(batch)
        progress(len(batch.customers) + len(batch.nodes) + len(batch.links))
    return copied.counts


class Tally:
    """How many records of each part (:class:`ImportBatch` field) went by."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(PARTS, 0)

    def add(self, batch: ImportBatch) -> None:
        for part in PARTS:
            self.counts[part] += len(getattr(batch, part))


# The parts of an ImportBatch that hold records, in the order they are read.
PARTS = tuple(f.name for f in fields(ImportBatch) if f.name not in ("at", "legacy_salt"))


async def read_store(source: Store, batch_size: int, *, at: datetime) -> AsyncIterator[ImportBatch]:
    """Everything of ``source`` a copy needs, in batches a target imports in order;
    ``at`` is the time a batch gives what the records do not carry."""
    async for customers in source.iter_customers(batch_size):
        ids = [c.id for c in customers]
        nodes = [n for page in (await source.nodes_of(ids)).values() for n in page]
        traits = [t for ts in (await source.traits_of(ids)).values() for t in ts]
        consents = sorted(
            (c for cs in (await source.consents_of(ids)).values() for c in cs),
            key=lambda c: c.order,
        )
        yield ImportBatch(at, customers=customers, nodes=nodes, traits=traits, consents=consents)
        async for interactions in _interactions(source, ids, batch_size):
            yield ImportBatch(at, interactions=interactions)
    async for links in source.iter_links(batch_size):
        yield ImportBatch(at, links=links)
    erased = await source.erasures()
    yield ImportBatch(
        at,
        bans=await source.bans(),
        erased=list(erased.hashes),
        legacy_salt=erased.legacy_salt,
        segments=await source.segments(),
        api_keys=await source.api_keys(),
    )
    async for ids in source.iter_event_ids(batch_size):
        yield ImportBatch(at, events=ids)


async def _interactions(
    source: Store, customer_ids: Sequence[str], batch_size: int
) -> AsyncIterator[list[InteractionView]]:
    """Every interaction of these customers, newest first, in batches."""
    pending: list[InteractionView] = []
    for cid in customer_ids:
        before = None
        while page := (await source.interactions_of([cid], limit=batch_size, before=before))[cid]:
            pending.extend(page)
            before = (page[-1].at, page[-1].id)
            if len(pending) >= batch_size:
                yield pending
                pending = []
            if len(page) < batch_size:
                break
    if pending:
        yield pending
