"""Purging what the retention policies no longer keep: one service for ``idgraph purge``
and the schedule inside ``idgraph serve`` (docs/operations.md, "Retention").

A purge works policy by policy in :class:`~idgraph.domain.retention.Policy` order, in
batches of ``batch_size`` rows, each batch its own transaction: a purge killed between
batches leaves a consistent store (what was deleted is gone, the rest waits for the next
purge), and requests served meanwhile wait for one batch at most. It ends with an audit
entry holding the counts, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from idgraph.config import RetentionSettings
from idgraph.domain.access import AuditEntry, Operation
from idgraph.domain.model import utcnow
from idgraph.domain.retention import Policy, PurgeReport
from idgraph.errors import IdgraphError
from idgraph.store.port import Store

log = logging.getLogger("idgraph.retention")

# The audit purpose of a purge: data retention, not a caller's purpose.
PURPOSE = "retention"
# The actor of purges that ``idgraph serve`` runs on its schedule.
SCHEDULER = "scheduler"


async def count(store: Store, settings: RetentionSettings, now: datetime) -> PurgeReport:
    """What a purge at ``now`` would delete, per active policy (a dry run: one read)."""
    cutoffs = settings.policy().cutoffs(now)
    return PurgeReport(now, cutoffs, await store.retention_counts(cutoffs))


async def purge(
    store: Store,
    settings: RetentionSettings,
    now: datetime,
    *,
    actor: str,
    on_batch: Callable[[Policy, int], object] | None = None,
) -> PurgeReport:
    """Delete what each active policy no longer keeps at ``now``; return the counts and
    record them in the audit trail (as ``actor``). ``on_batch(policy, deleted)`` is
    called after each batch commits."""
    cutoffs = settings.policy().cutoffs(now)
    counts: dict[Policy, int] = {}
    for policy, cutoff in cutoffs.items():
        counts[policy] = 0
        after: str | int | None = None
        while True:
            step = await store.purge_batch(policy, cutoff, limit=settings.batch_size, after=after)
            counts[policy] += step.deleted
            if on_batch is not None:
                on_batch(policy, step.deleted)
            if step.resume is None:
                break
            after = step.resume
            await asyncio.sleep(0)  # let requests in between batches
    report = PurgeReport(now, cutoffs, counts, applied=True)
    if cutoffs:
        entry = AuditEntry(utcnow(), actor, PURPOSE, Operation.PURGE, None, report.detail())
        await store.append_audit([entry])
    return report


@asynccontextmanager
async def scheduled(store: Store, settings: RetentionSettings) -> AsyncIterator[None]:
    """While inside, purge every ``settings.schedule`` seconds (never, if unset), in a
    background task that the exit cancels (between batches on SQLite; a Neo4j batch
    cut short is rolled back)."""
    if settings.schedule is None:
        yield
        return
    task = asyncio.create_task(_every(store, settings, settings.schedule), name="idgraph-purge")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _every(store: Store, settings: RetentionSettings, interval: float) -> None:
    """Purge every ``interval`` seconds, the first time one interval after start, until
    cancelled. One purge at a time: the next waits for the previous to end. A failed
    purge is logged (its error class and, for idgraph's own errors, their message, which
    never holds personal data) and the schedule goes on."""
    while True:
        await asyncio.sleep(interval)
        try:
            report = await purge(store, settings, utcnow(), actor=SCHEDULER)
        except IdgraphError as exc:
            log.error("scheduled purge failed: %s: %s", type(exc).__name__, exc)
        except Exception as exc:  # a failed purge must not end the schedule
            log.error("scheduled purge failed: %s", type(exc).__name__)
        else:
            log.info("scheduled purge: %s", report.detail())
