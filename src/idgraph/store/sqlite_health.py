"""The health report's aggregates from an SQLite store (:class:`HealthStats`).

Each is one aggregate statement over a table or an index; run together in one read
transaction (see ``SqliteStore.health``), they see one state of the graph. On a store of
270k events they take about half a second together, off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

from idgraph.domain.health import EXPIRED, SUPER_NODES, ConsentCoverage, HealthStats, SuperNode
from idgraph.domain.model import ConsentStatus

SIZES = "SELECT size, count(*) FROM customers GROUP BY size"
NEW_CUSTOMERS = "SELECT substr(created_at, 1, 10), count(*) FROM customers GROUP BY 1"
MERGES = "SELECT substr(at, 1, 10), count(*) FROM aliases GROUP BY 1"
REFUSED = (
    "SELECT coalesce(rule, ''), substr(last_at, 1, 10), count(*) FROM links "
    "WHERE accepted = 0 GROUP BY 1, 2"
)
EVENTS = "SELECT substr(at, 1, 10), count(*) FROM events GROUP BY 1"
INTERACTIONS = "SELECT type, count(*) FROM interactions GROUP BY type"
# The latest decision per customer and purpose, in the order profiles read them.
CONSENT = """
SELECT purpose,
       CASE WHEN status = :granted AND expires_at IS NOT NULL AND expires_at <= :now
            THEN :expired ELSE status END,
       count(*)
FROM (SELECT s.purpose, s.status, s.expires_at,
             row_number() OVER (PARTITION BY n.cluster, s.purpose
                                ORDER BY s.recorded_at DESC, s.rowid DESC) AS latest
      FROM consents s JOIN nodes n ON n.id = s.node)
WHERE latest = 1
GROUP BY 1, 2
"""
SUPER = """
SELECT n.key, n.kind, d.links, d.refused
FROM (SELECT node, count(*) AS links, total(accepted = 0) AS refused
      FROM (SELECT a AS node, accepted FROM links UNION ALL SELECT b, accepted FROM links)
      GROUP BY node ORDER BY links DESC, node LIMIT :limit) d
JOIN nodes n ON n.id = d.node
ORDER BY d.links DESC, n.kind
"""


def read(db: sqlite3.Connection, path: str, counts: dict[str, int], now: datetime) -> HealthStats:
    """The aggregates, read on ``db`` inside the caller's transaction (a scan without a
    time budget, see ``SqliteStore.health``)."""
    refused: dict[str, dict[date, int]] = {}
    for rule, day, n in db.execute(REFUSED):
        refused.setdefault(rule, {})[date.fromisoformat(day)] = n
    consent: dict[str, dict[str, int]] = {}
    params = {"granted": ConsentStatus.GRANTED.value, "now": now.isoformat(), "expired": EXPIRED}
    for purpose, status, n in db.execute(CONSENT, params):
        consent.setdefault(purpose, {})[status] = n
    return HealthStats(
        at=now,
        counts=counts,
        store_bytes=_file_bytes(path),
        customer_sizes=dict(db.execute(SIZES)),
        new_customers=_days(db.execute(NEW_CUSTOMERS)),
        merges=_days(db.execute(MERGES)),
        refused_links=refused,
        events=_days(db.execute(EVENTS)),
        interactions=dict(db.execute(INTERACTIONS)),
        consent={p: ConsentCoverage(**by_status) for p, by_status in sorted(consent.items())},
        super_nodes=tuple(
            SuperNode(key, kind, links, int(refused))
            for key, kind, links, refused in db.execute(SUPER, {"limit": SUPER_NODES})
        ),
    )


def _days(rows: Iterable[tuple[str, int]]) -> dict[date, int]:
    return {date.fromisoformat(day): n for day, n in rows}


def _file_bytes(path: str) -> int | None:
    """The database file and its write-ahead log."""
    if path == ":memory:":
        return None
    files = (Path(path), Path(f"{path}-wal"))
    return sum(f.stat().st_size for f in files if f.exists())
