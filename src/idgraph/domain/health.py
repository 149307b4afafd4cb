"""What the health report plots: plain aggregates of the whole graph, no personal data
but the super-node candidates' keys (which the report turns into opaque ids)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

SUPER_NODES = 10  # how many of the most linked identity nodes the report shows
EXPIRED = "expired"  # a grant past its expiry, in ConsentCoverage


@dataclass(frozen=True, slots=True)
class SuperNode:
    """An identity node that much evidence links to others: a shared family email, a
    public computer's cookie, a placeholder value a source sends for "unknown"."""

    key: str  # personal data: never rendered, only sealed into an opaque id
    kind: str
    links: int  # accepted and refused, to any other identity node
    refused: int


@dataclass(frozen=True, slots=True)
class ConsentCoverage:
    """Customers by their latest decision for one purpose (across their identity nodes,
    by the time idgraph recorded it). A grant past its expiry counts as ``expired``."""

    granted: int = 0
    denied: int = 0
    expired: int = 0


@dataclass(frozen=True, slots=True)
class HealthStats:
    """One consistent read of the store's aggregates (see ``Store.health``). Days are UTC
    dates; a day with nothing is absent rather than zero."""

    at: datetime
    counts: dict[str, int]  # as ``Store.counts``
    store_bytes: int | None  # the database files, for a file store; None for a server
    customer_sizes: dict[int, int]  # identity nodes in a customer → live customers
    new_customers: dict[date, int]  # live customers by the day they were created
    merges: dict[date, int]  # absorbed customer ids by the day of the merge
    refused_links: dict[str, dict[date, int]]  # rule → day last refused → links
    events: dict[date, int]  # applied events by the day their batch was applied
    interactions: dict[str, int]  # interaction type → interactions
    consent: dict[str, ConsentCoverage]  # purpose → customers by latest decision
    super_nodes: tuple[SuperNode, ...] = field(default=())
