"""Retention in Neo4j: the rows each :class:`Policy` deletes, counted and purged, with
the ``RETENTION_*`` and ``PURGE_*`` statements of :mod:`idgraph.store.cypher` (see
:mod:`idgraph.domain.retention` for what each policy means).

As in the embedded store: interactions and audit entries are found through their time
index and all go, so each batch takes the oldest; the other policies examine the next
``limit`` event ids, identity nodes (for their consent decisions) or customers by key
after the previous batch's last, so one purge reads each once. The caller runs a batch
in one locked write transaction and hands it in as ``run`` (a statement and its
parameters in, the rows out): the driver stays in the adapter module.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any, LiteralString, Protocol

from idgraph.domain.model import INTERACTION_ID_SUFFIX
from idgraph.domain.retention import ANONYMOUS_KINDS, Policy, PurgeStep
from idgraph.store import cypher


class Run(Protocol):
    def __call__(self, query: LiteralString, **params: Any) -> Awaitable[list[dict[str, Any]]]: ...


_DELETE: dict[Policy, tuple[LiteralString, ...]] = {
    Policy.EVENT_IDS: (cypher.PURGE_EVENT_IDS,),
    Policy.EXPIRED_CONSENTS: (cypher.PURGE_CONSENTS,),
    Policy.ANONYMOUS_CUSTOMERS: cypher.PURGE_CUSTOMERS,
}


def _params(cutoff: datetime) -> dict[str, Any]:
    return {
        "cutoff": cutoff,
        "suffix": INTERACTION_ID_SUFFIX,
        "anonymous": sorted(ANONYMOUS_KINDS),
    }


async def counts(run: Run, cutoffs: dict[Policy, datetime]) -> dict[Policy, int]:
    found = {}
    for policy, cutoff in cutoffs.items():
        rows = await run(cypher.RETENTION_COUNT[policy.value], **_params(cutoff))
        found[policy] = int(rows[0]["total"])
    return found


async def purge_batch(
    run: Run,
    policy: Policy,
    cutoff: datetime,
    limit: int,
    after: str | int | None,
) -> PurgeStep:
    params = {**_params(cutoff), "limit": limit}
    if policy.value in cypher.RETENTION_OLDEST:
        rows = await run(cypher.RETENTION_OLDEST[policy.value], **params)
        deleted = int(rows[0]["deleted"])
        return PurgeStep(deleted, deleted if deleted == limit else None)
    params["after"] = "" if after is None else after
    window = await run(cypher.RETENTION_WINDOW[policy.value], **params)
    if policy is Policy.EXPIRED_CONSENTS:
        doomed = [d for row in window for d in row["doomed"]]
    else:
        doomed = [row["key"] for row in window if row["doomed"]]
    removed: list[str] = []
    for statement in _DELETE[policy] if doomed else ():
        removed.extend(row["removed"] for row in await run(statement, keys=doomed))
    resume = window[-1]["key"] if len(window) == limit else None
    return PurgeStep(len(doomed), resume, tuple(removed))
