"""The application service: what the CLI and the API ask of idgraph.

It turns raw input into domain values, runs the domain logic against the store port
and returns domain results. It knows nothing of HTTP, GraphQL, SQL or Cypher.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from idgraph.config import Settings
from idgraph.domain.access import AuditEntry, ErasureReport, Operation
from idgraph.domain.events import EventParser
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    AttachmentRepair,
    ConsentStatus,
    CustomerRecord,
    Event,
    EventOutcome,
    NodeRecord,
    Outcome,
    Refusal,
    SplitPlan,
    TraitRecord,
    utcnow,
)
from idgraph.domain.normalize import Normalizer
from idgraph.domain.profile import find_violations, merge_traits, repair_subject
from idgraph.domain.resolution import plan_batch
from idgraph.domain.split import plan_ban_only, plan_unlink
from idgraph.domain.text import text_problem
from idgraph.errors import EventError, InvalidInput, NotFound
from idgraph.store.port import Store

_ids = random.Random(secrets.randbits(128))


def new_customer_id() -> str:
    """Random 64-bit ids: unguessability is not needed, and one per new identity node
    made ``secrets`` (a system call each) show up in bulk-ingest profiles."""
    return f"cus_{_ids.getrandbits(64):016x}"


@dataclass(slots=True)
class BatchResult:
    """The outcome of each event of a batch, in input order, and what changed."""

    outcomes: list[EventOutcome] = field(default_factory=list)
    merges: int = 0
    new_customers: int = 0
    new_nodes: int = 0
    rejected_links: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)


@dataclass(frozen=True, slots=True)
class Profile:
    customer: CustomerRecord
    nodes: list[NodeRecord]
    traits: dict[str, TraitRecord]


def event_parser(settings: Settings) -> EventParser:
    return EventParser(
        Normalizer(settings.default_region),
        settings.rules,
        timedelta(seconds=settings.max_clock_skew_seconds),
    )


def check_events(
    parser: EventParser, raw_events: Sequence[object], now: datetime
) -> list[Event | EventOutcome]:
    """Each raw event as a valid Event, or as the outcome that refuses it, in order."""
    checked: list[Event | EventOutcome] = []
    for raw in raw_events:
        try:
            checked.append(parser.parse(raw, now))
        except EventError as exc:
            checked.append(
                EventOutcome(
                    exc.event_id or "",
                    Outcome.REJECTED,
                    str(exc),
                    refusal=Refusal.INVALID,
                    path=exc.path,
                )
            )
    return checked


class IdentityGraph:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.parser = event_parser(settings)
        self.normalizer = self.parser.normalizer

    # ---- ingest ----------------------------------------------------------------------

    async def ingest(self, raw_events: Sequence[object]) -> BatchResult:
        """Validate, resolve and store a batch. Invalid events are rejected one by one
        with their reason; the valid ones are applied together, atomically. One ``now``
        per batch bounds the events' timestamps and dates what the batch records."""
        now = utcnow()
        return await self.apply(check_events(self.parser, raw_events, now), now)

    async def apply(self, checked: Sequence[Event | EventOutcome], now: datetime) -> BatchResult:
        """Resolve and store a batch that :func:`check_events` checked with this ``now``
        (perhaps in another process): its events together, atomically; its refusals
        are passed on in their place."""
        events = [s for s in checked if isinstance(s, Event)]
        result = BatchResult()
        planned = iter(await self._resolve(events, result, now) if events else [])
        result.outcomes = [s if isinstance(s, EventOutcome) else next(planned) for s in checked]
        return result

    async def _resolve(
        self, events: Sequence[Event], result: BatchResult, now: datetime
    ) -> list[EventOutcome]:
        rules = self.settings.rules
        plan = await self.store.write_batch(
            {n.key for e in events for n in e.nodes},
            {e.id for e in events},
            lambda snapshot: plan_batch(events, snapshot, rules, new_customer_id, now),
        )
        result.merges += len(plan.merges)
        result.new_customers += len(plan.new_customers)
        result.new_nodes += len(plan.new_nodes)
        result.rejected_links += sum(1 for link in plan.links if not link.accepted)
        return plan.outcomes

    # ---- reads -----------------------------------------------------------------------

    async def customer_of(self, key: str) -> str | None:
        """The customer id of an identifier typed as ``kind:value`` (normalized first)."""
        node = self.normalizer.parse_key(key)
        return (await self.store.customer_ids_of([node.key])).get(node.key)

    async def profile(self, customer_id: str) -> Profile | None:
        customer = (await self.store.customers([customer_id])).get(customer_id)
        if customer is None:
            return None
        nodes = (await self.store.nodes_of([customer.id]))[customer.id]
        traits = (await self.store.traits_of([customer.id]))[customer.id]
        return Profile(customer, nodes, merge_traits(traits))

    async def resolve(self, key: str) -> Profile | None:
        customer_id = await self.customer_of(key)
        return None if customer_id is None else await self.profile(customer_id)

    # ---- steward actions -------------------------------------------------------------

    async def unlink(self, a: str, b: str, *, ban: bool = False) -> SplitPlan:
        """Split ``a`` from ``b``; with ``ban``, new evidence can never join them again."""
        key_a, key_b = self.normalizer.parse_key(a).key, self.normalizer.parse_key(b).key
        customers = await self.store.customer_ids_of([key_a, key_b])
        for key in (key_a, key_b):
            if key not in customers:
                raise NotFound(f"no identity node {key}")
        now = utcnow()
        if customers[key_a] == customers[key_b]:
            return await self.store.rewrite_customer(
                customers[key_a],
                lambda c: plan_unlink(c, key_a, key_b, ban=ban, new_id=new_customer_id, now=now),
            )
        if not ban:
            return SplitPlan(customers[key_a], [], [], now, note="already in different customers")
        return await self.store.rewrite_customer(
            customers[key_a], lambda c: plan_ban_only(c, key_a, key_b, now)
        )

    # ---- consent, erasure, audit ----------------------------------------------------

    async def set_consent(
        self,
        subject: str,
        purpose: str,
        status: ConsentStatus,
        *,
        expires_at: datetime | None = None,
        source: str,
    ) -> EventOutcome:
        """Record a consent decision for an identifier (``kind:value``), as an event of its
        own so it follows the same validation, idempotency and erasure rules."""
        if self.settings.purpose(purpose) is None:
            raise InvalidInput(f"unknown purpose {purpose!r}; configured: {self.purpose_names}")
        node = self.normalizer.parse_key(subject)
        consent: dict[str, Any] = {"purpose": purpose, "status": status.value}
        if expires_at is not None:
            consent["expiresAt"] = expires_at.isoformat()
        raw: dict[str, Any] = {
            "id": f"consent:{uuid.uuid4()}",
            "timestamp": utcnow().isoformat(),
            "source": source,
            "identifiers": [],
            "consent": consent,
        }
        if node.kind == ACCOUNT:
            raw["account"] = dict(node.attrs)
        elif node.kind == DEVICE:
            raw["device"] = {"id": node.value}
        else:
            raw["identifiers"] = [{"kind": node.kind, "value": node.value}]
        return (await self.ingest([raw])).outcomes[0]

    @property
    def purpose_names(self) -> str:
        return ", ".join(p.name for p in self.settings.purposes)

    async def forget(self, subject: str) -> ErasureReport:
        """Erase the whole customer an identifier (``kind:value``) or customer id names."""
        if ":" in subject:
            customer_id = await self.customer_of(subject)
        elif (problem := text_problem(subject)) is not None:
            raise InvalidInput(f"customer id {problem}")
        else:
            customer_id = subject
        customer = (
            None
            if customer_id is None
            else (await self.store.customers([customer_id])).get(customer_id)
        )
        if customer is None:
            raise NotFound(f"no customer {subject!r}")
        return await self.store.forget(customer.id, utcnow())

    async def audit(
        self,
        actor: str,
        purpose: str,
        operation: Operation,
        customer_ids: Sequence[str | None],
        detail: str = "",
    ) -> None:
        now = utcnow()
        await self.store.append_audit(
            [AuditEntry(now, actor, purpose, operation, cid, detail) for cid in customer_ids]
        )

    # ---- operations ------------------------------------------------------------------

    async def check(self) -> list[str]:
        store = self.store
        nodes = [n async for page in store.iter_nodes() for n in page]
        links = [k async for page in store.iter_links() for k in page]
        customers = [c async for page in store.iter_customers() for c in page]
        return find_violations(
            nodes,
            links,
            customers,
            await store.aliases(),
            await store.bans(),
            self.settings.rules,
            await store.shared_attachments(),
        )

    async def repair(self) -> AttachmentRepair:
        """Give each event's interaction and consent decision back to its subject alone,
        in a store written by a version that attached them to every node of the event."""
        rules = self.settings.rules
        return await self.store.repair_attachments(lambda shared: repair_subject(shared, rules))
