"""Retention: which stored rows are old enough to go (docs/operations.md, "Retention").

Each :class:`Policy` names one kind of row and is off unless configured. From the
configured :class:`RetentionPolicy` and the moment of the purge, :meth:`cutoffs` gives
each active policy its cut-off: the rows it deletes are those dated before it.

- ``interactions``: interactions whose time (the event's timestamp) is before the
  cut-off. The graph does not change.
- ``anonymous_customers``: customers whose identity nodes are all cookies or devices
  (:data:`ANONYMOUS_KINDS`) and that were inactive since the cut-off: idgraph has not
  created, grown or merged them since (their ``updated_at``), and no link, trait report,
  consent decision or interaction on their nodes is dated at or after it. They go whole
  — nodes, links, bans, aliases, traits, consents, interactions — like an erasure but
  without keeping a hash: the same cookie seen again starts a new customer. A whole
  connected component goes, so no other customer loses a node and none is split.
- ``audit``: audit entries dated before the cut-off.
- ``event_ids``: applied event ids (idempotency records) applied before the cut-off,
  except those whose interaction is still stored (its id is the event's, so the
  interaction itself still makes a replay a duplicate). A replayed event whose id was
  purged is applied again, as a new one.
- ``expired_consents``: consent decisions that have expired by the purge and that a
  later decision on the same identity node for the same purpose replaced. Such a
  decision is never consulted again (consent reads each node's latest decision, and a
  customer's latest is one of its nodes' latest), so deleting it changes no answer.
  An expired decision that is still its node's latest stays: it is what makes the
  older ones not count, and deleting it would bring an older grant back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from idgraph.domain.model import DEVICE

ANONYMOUS_KINDS = frozenset({"cookie", DEVICE})
# The ``detail`` of a purge's audit entry starts with this (counts only follow).
AUDIT_DETAIL = "purge"


class Policy(StrEnum):
    """A kind of row a purge deletes, in the order a purge applies them: customers first
    (their interactions go with them), event ids after interactions (an event id is kept
    while its interaction is stored), the audit trail last."""

    ANONYMOUS_CUSTOMERS = "anonymous_customers"
    INTERACTIONS = "interactions"
    EXPIRED_CONSENTS = "expired_consents"
    EVENT_IDS = "event_ids"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days (None: for ever), and whether expired
    consent decisions are kept as history."""

    interactions_days: int | None = None
    anonymous_customers_days: int | None = None
    audit_days: int | None = None
    event_ids_days: int | None = None
    keep_expired_consents: bool = True

    def cutoffs(self, now: datetime) -> dict[Policy, datetime]:
        """The cut-off of each active policy, in :class:`Policy` order."""
        days = {
            Policy.ANONYMOUS_CUSTOMERS: self.anonymous_customers_days,
            Policy.INTERACTIONS: self.interactions_days,
            Policy.EXPIRED_CONSENTS: None if self.keep_expired_consents else 0,
            Policy.EVENT_IDS: self.event_ids_days,
            Policy.AUDIT: self.audit_days,
        }
        return {p: now - timedelta(days=d) for p, d in days.items() if d is not None}


@dataclass(frozen=True, slots=True)
class PurgeStep:
    """What one batch of a purge did: how many rows (customers, for
    ``anonymous_customers``) it deleted, and where the next batch resumes (an adapter's
    position, passed back as it is), or None when the policy has nothing more.
    ``removed_nodes`` are the keys of the identity nodes it deleted, so that encryption
    at rest can shred their keys as erasure does."""

    deleted: int
    resume: str | int | None
    removed_nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Per active policy, its cut-off and how many rows it deletes (a dry run: would
    delete)."""

    at: datetime
    cutoffs: dict[Policy, datetime]
    counts: dict[Policy, int] = field(default_factory=dict)
    applied: bool = False

    def detail(self) -> str:
        """The audit entry's text: counts only, never a row's content."""
        return " ".join([AUDIT_DETAIL, *(f"{p.value}={n}" for p, n in self.counts.items())])
