"""Retention in the embedded store: the rows each :class:`Policy` deletes, counted and
purged (see :mod:`idgraph.domain.retention` for what each policy means).

Interactions and audit entries are found through their time index (``at``), and every
one found goes, so each batch starts again from the oldest. The other policies keep
some of the rows they look at (an event id whose interaction is stored, a consent
decision still in force, a customer with an email), so a batch examines the next
``limit`` rows by key after the previous batch's last (``resume``): a whole purge
reads each of those tables once, and one batch never holds the write lock for longer
than ``limit`` rows take.

Lists of ids travel as one JSON parameter (``json_each``), whatever their length.
Every statement runs inside the caller's transaction: one batch, one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from idgraph.domain.model import INTERACTION_ID_SUFFIX
from idgraph.domain.retention import ANONYMOUS_KINDS, Policy, PurgeStep

# A list parameter: ``x IN (SELECT value FROM json_each(?))``.
_IN = "(SELECT value FROM json_each(?))"

# ---- what each policy deletes, as a condition on one row -------------------------------

_OLD_INTERACTION = "at < :cutoff"
_OLD_AUDIT = "at < :cutoff"
_FORGOTTEN_EVENT = (
    "e.at < :cutoff AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.ext_id = e.id || :suffix)"
)
# Expired, and replaced by a decision recorded later on the same node and purpose (the
# order consent reads decisions in: recorded_at, then rowid).
_REPLACED_CONSENT = (
    "s.expires_at IS NOT NULL AND s.expires_at <= :cutoff AND EXISTS ("
    "SELECT 1 FROM consents later WHERE later.node = s.node AND later.purpose = s.purpose "
    "AND (later.recorded_at > s.recorded_at "
    "OR (later.recorded_at = s.recorded_at AND later.rowid > s.rowid)))"
)
# Only cookies and devices, unchanged since the cut-off, and nothing on its nodes dated
# at or after it.
_INACTIVE_ANONYMOUS = (
    "c.updated_at < :cutoff AND NOT EXISTS ("
    "SELECT 1 FROM nodes n WHERE n.cluster = c.cluster AND ("
    "n.kind NOT IN (SELECT value FROM json_each(:anonymous)) "
    "OR EXISTS (SELECT 1 FROM traits t WHERE t.node = n.id AND t.at >= :cutoff) "
    "OR EXISTS (SELECT 1 FROM consents s WHERE s.node = n.id AND s.at >= :cutoff) "
    "OR EXISTS (SELECT 1 FROM performed p JOIN interactions i ON i.id = p.interaction "
    "WHERE p.node = n.id AND i.at >= :cutoff) "
    "OR EXISTS (SELECT 1 FROM links l WHERE l.a = n.id AND l.last_at >= :cutoff) "
    "OR EXISTS (SELECT 1 FROM links l WHERE l.b = n.id AND l.last_at >= :cutoff)))"
)

COUNTS = {
    Policy.ANONYMOUS_CUSTOMERS: f"SELECT count(*) FROM customers c WHERE {_INACTIVE_ANONYMOUS}",
    Policy.INTERACTIONS: f"SELECT count(*) FROM interactions WHERE {_OLD_INTERACTION}",
    Policy.EXPIRED_CONSENTS: f"SELECT count(*) FROM consents s WHERE {_REPLACED_CONSENT}",
    Policy.EVENT_IDS: f"SELECT count(*) FROM events e WHERE {_FORGOTTEN_EVENT}",
    Policy.AUDIT: f"SELECT count(*) FROM audit WHERE {_OLD_AUDIT}",
}

# The rows one batch examines, with whether each goes: (key, doomed).
_WINDOWS = {
    Policy.ANONYMOUS_CUSTOMERS: (
        f"SELECT c.cluster, {_INACTIVE_ANONYMOUS} FROM customers c "
        "WHERE c.cluster > :after ORDER BY c.cluster LIMIT :limit"
    ),
    Policy.EXPIRED_CONSENTS: (
        f"SELECT s.rowid, {_REPLACED_CONSENT} FROM consents s "
        "WHERE s.rowid > :after ORDER BY s.rowid LIMIT :limit"
    ),
    Policy.EVENT_IDS: (
        f"SELECT e.id, {_FORGOTTEN_EVENT} FROM events e "
        "WHERE e.id > :after ORDER BY e.id LIMIT :limit"
    ),
}
_OLDEST = {
    Policy.INTERACTIONS: (
        f"SELECT id FROM interactions WHERE {_OLD_INTERACTION} ORDER BY at LIMIT :limit"
    ),
    Policy.AUDIT: f"SELECT seq FROM audit WHERE {_OLD_AUDIT} ORDER BY at LIMIT :limit",
}
_FIRST: dict[Policy, str | int] = {
    Policy.ANONYMOUS_CUSTOMERS: 0,
    Policy.EXPIRED_CONSENTS: 0,
    Policy.EVENT_IDS: "",
}

# ---- deleting what a batch found ---------------------------------------------------------

_DELETE = {
    Policy.INTERACTIONS: (
        f"DELETE FROM performed WHERE interaction IN {_IN}",
        f"DELETE FROM interactions WHERE id IN {_IN}",
    ),
    Policy.AUDIT: (f"DELETE FROM audit WHERE seq IN {_IN}",),
    Policy.EVENT_IDS: (f"DELETE FROM events WHERE id IN {_IN}",),
    Policy.EXPIRED_CONSENTS: (f"DELETE FROM consents WHERE rowid IN {_IN}",),
}

_NODES_OF_CUSTOMERS = f"SELECT key FROM nodes WHERE cluster IN {_IN}"

# A customer goes whole, as ``forget`` removes one (without recording erasure hashes):
# its interactions unless another customer's node performed them too (stores written by
# early versions), then whatever names its nodes, then the nodes, aliases and itself.
_DELETE_CUSTOMERS = (
    f"DELETE FROM interactions WHERE id IN (SELECT p.interaction FROM performed p "
    f"JOIN nodes n ON n.id = p.node WHERE n.cluster IN {_IN}) "
    "AND NOT EXISTS (SELECT 1 FROM performed p JOIN nodes n ON n.id = p.node "
    f"WHERE p.interaction = interactions.id AND n.cluster NOT IN {_IN})",
    f"DELETE FROM performed WHERE node IN (SELECT id FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM traits WHERE node IN (SELECT id FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM consents WHERE node IN (SELECT id FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM links WHERE a IN (SELECT id FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM links WHERE b IN (SELECT id FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM bans WHERE a IN (SELECT key FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM bans WHERE b IN (SELECT key FROM nodes WHERE cluster IN {_IN})",
    f"DELETE FROM aliases WHERE customer_id IN (SELECT id FROM customers WHERE cluster IN {_IN})",
    f"DELETE FROM nodes WHERE cluster IN {_IN}",
    f"DELETE FROM customers WHERE cluster IN {_IN}",
)


def _params(cutoff: str) -> dict[str, Any]:
    return {
        "cutoff": cutoff,
        "suffix": INTERACTION_ID_SUFFIX,
        "anonymous": json.dumps(sorted(ANONYMOUS_KINDS)),
    }


def counts(db: sqlite3.Connection, cutoffs: Mapping[Policy, str]) -> dict[Policy, int]:
    """How many rows each policy would delete now (customers, for anonymous ones); the
    caller runs it in one read transaction."""
    return {
        policy: int(db.execute(COUNTS[policy], _params(cutoff)).fetchone()[0])
        for policy, cutoff in cutoffs.items()
    }


def purge_batch(
    db: sqlite3.Connection, policy: Policy, cutoff: str, limit: int, after: str | int | None
) -> PurgeStep:
    """One batch of ``policy``, inside the caller's write transaction."""
    params = {**_params(cutoff), "limit": limit}
    if policy in _OLDEST:
        doomed = [row[0] for row in db.execute(_OLDEST[policy], params)]
        resume = doomed[-1] if len(doomed) == limit else None
    else:
        params["after"] = _FIRST[policy] if after is None else after
        window = db.execute(_WINDOWS[policy], params).fetchall()
        doomed = [key for key, goes in window if goes]
        resume = window[-1][0] if len(window) == limit else None
    removed: tuple[str, ...] = ()
    if doomed:
        ids = json.dumps(doomed)
        if policy is Policy.ANONYMOUS_CUSTOMERS:
            removed = tuple(key for (key,) in db.execute(_NODES_OF_CUSTOMERS, (ids,)))
            for statement in _DELETE_CUSTOMERS:
                db.execute(statement, (ids,) * statement.count(_IN))
        else:
            for statement in _DELETE[policy]:
                db.execute(statement, (ids,))
    return PurgeStep(len(doomed), resume, removed)
