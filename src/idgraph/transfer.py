"""Copy any store into Neo4j (``idgraph export --to neo4j://…``), so analysts can explore
an embedded graph in Neo4j Browser.

Two passes over the source, in batches, each batch one write transaction on the target:
customers page by page with everything hanging off them (aliases, identity nodes,
traits, consent history, interactions), then every link (both ends must exist by then),
then the bans. Copy from a store nobody is writing to: the passes are not one snapshot.

Applied event ids and the erasure record (keyed hashes, and the legacy salt of a store
erased before the HMAC) are copied too, so replaying old events into the copy finds
duplicates, and erased identifiers stay refused — as long as the copy is served with
the same server secret (:mod:`idgraph.secret`): the target is opened here with the
source's erasure key, and whoever serves it later must give it the same secret
(``IDGRAPH_SECRET`` or ``IDGRAPH_SECRET_FILE``). Not copied: merge times of aliases and
the time of each ban (set to the time of the copy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from idgraph.config import Neo4jSettings
from idgraph.domain.model import InteractionView, utcnow
from idgraph.errors import InvalidInput
from idgraph.store.port import Store

if TYPE_CHECKING:
    from idgraph.store.neo4j import Neo4jStore

T = TypeVar("T")
Progress = Callable[[int], object]


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def total_records(source: Store) -> int:
    """What ``progress`` counts up to: customers, identity nodes and links."""
    counts = await source.counts()
    return counts["customers"] + counts["nodes"] + counts["links"]


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
    ``source`` into it. The target must hold no identity nodes unless ``replace`` (which
    wipes it first). Returns what was copied."""
    from idgraph.store.neo4j import Neo4jStore

    target = await Neo4jStore.open(url, settings, erasure_key=erasure_key, clear=replace)
    try:
        existing = await target.counts()
        if existing["nodes"] or existing["customers"]:
            raise InvalidInput(
                f"{url} already holds {existing['nodes']} identity nodes and "
                f"{existing['customers']} customers: pass --replace to wipe it first"
            )
        return await copy_store(source, target, batch_size=batch_size, progress=progress)
    finally:
        await target.close()


async def copy_store(
    source: Store,
    target: Neo4jStore,
    *,
    batch_size: int = 5000,
    progress: Progress = lambda n: None,
) -> dict[str, int]:
    """Copy every customer, identity node, link, ban, trait, consent and interaction of
    ``source`` into the empty store ``target``; ``progress(n)`` after each batch."""
    copied = dict.fromkeys(
        (
            "customers",
            "nodes",
            "links",
            "bans",
            "traits",
            "consents",
            "interactions",
            "erased",
            "events",
        ),
        0,
    )
    now = utcnow()
    async for customers in source.iter_customers(batch_size):
        ids = [c.id for c in customers]
        await target.import_customers(customers)
        nodes = [n for page in (await source.nodes_of(ids)).values() for n in page]
        for chunk in _chunks(nodes, batch_size):
            await target.import_nodes(chunk)
        traits = [t for cid, ts in (await source.traits_of(ids)).items() for t in ts]
        for trait_chunk in _chunks(traits, batch_size):
            await target.import_traits(trait_chunk)
        consents = sorted(
            (c for cs in (await source.consents_of(ids)).values() for c in cs),
            key=lambda c: c.order,
        )
        for consent_chunk in _chunks(consents, batch_size):
            await target.import_consents(consent_chunk)
        copied["interactions"] += await _copy_interactions(source, target, ids, batch_size)
        copied["customers"] += len(customers)
        copied["nodes"] += len(nodes)
        copied["traits"] += len(traits)
        copied["consents"] += len(consents)
        progress(len(customers) + len(nodes))
    async for links in source.iter_links(batch_size):
        await target.import_links(links)
        copied["links"] += len(links)
        progress(len(links))
    bans = await source.bans()
    await target.import_bans(bans, now)
    copied["bans"] = len(bans)
    erased = await source.erasures()
    await target.import_erasures(erased, now)
    copied["erased"] = len(erased.hashes)
    async for ids in source.iter_event_ids(batch_size):
        await target.import_event_ids(ids, now)
        copied["events"] += len(ids)
    return copied


async def _copy_interactions(
    source: Store, target: Neo4jStore, customer_ids: Sequence[str], batch_size: int
) -> int:
    """Every interaction of these customers, newest first, page by page."""
    copied = 0
    pending: list[InteractionView] = []
    for cid in customer_ids:
        before = None
        while page := (await source.interactions_of([cid], limit=batch_size, before=before))[cid]:
            pending.extend(page)
            before = (page[-1].at, page[-1].id)
            if len(pending) >= batch_size:
                await target.import_interactions(pending)
                copied += len(pending)
                pending = []
            if len(page) < batch_size:
                break
    await target.import_interactions(pending)
    return copied + len(pending)
