"""Resolution, step 3 of docs/concepts.md: plan a batch of events in memory.

Union-find runs over *customers*, not identity nodes: every existing customer the batch
touches and every new node (a provisional customer of one) is one element, so a merge
with a 100,000-node customer costs the same as a merge of two small ones. The plan is
then applied by the store in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import msgspec

from idgraph.domain.model import (
    INTERACTION_ID_SUFFIX,
    ConsentRecord,
    CustomerUpdate,
    Event,
    EventOutcome,
    IdentityNode,
    InteractionRecord,
    Link,
    Merge,
    NewCustomer,
    NewNode,
    Outcome,
    Refusal,
    ResolutionPlan,
    Snapshot,
    TraitReport,
)
from idgraph.domain.rules import Rules

IdFactory = Callable[[], str]


class _Element(msgspec.Struct):
    id: str
    created_at: datetime
    seq: int  # creation order inside this batch; 0 for customers that already exist
    size: int
    counts: dict[str, int]
    exists: bool
    banned: set[str] = set()
    changed: bool = False

    def age(self) -> tuple[datetime, int, int, str]:
        """Older first; ties go to the larger customer (docs/concepts.md, "Resolution")."""
        return (self.created_at, self.seq, -self.size, self.id)


class _Planner:
    def __init__(self, snapshot: Snapshot, rules: Rules, new_id: IdFactory, now: datetime):
        self.rules = rules
        self.new_id = new_id
        self.now = now
        self.snapshot = snapshot
        self.parent: dict[str, str] = {}
        self.elements: dict[str, _Element] = {}
        self.element_of: dict[str, str] = dict(snapshot.node_customer)
        self.seq = 0
        for c in snapshot.customers.values():
            self.elements[c.id] = _Element(
                c.id, c.created_at, 0, c.size, dict(c.kind_counts), exists=True
            )
            self.parent[c.id] = c.id
        for pair in snapshot.bans:
            x, y = tuple(pair)
            self.elements[x].banned.add(y)
            self.elements[y].banned.add(x)
        self.plan = ResolutionPlan(now)
        self.new_nodes: dict[str, tuple[IdentityNode, datetime]] = {}
        self.accepted: list[tuple[Event, list[str]]] = []

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def element(self, node: IdentityNode, at: datetime) -> str:
        elem = self.element_of.get(node.key)
        if elem is None:
            self.seq += 1
            elem = self.new_id()
            self.elements[elem] = _Element(elem, self.now, self.seq, 1, {node.kind: 1}, False)
            self.parent[elem] = elem
            self.element_of[node.key] = elem
            self.new_nodes[node.key] = (node, at)
        return self.find(elem)

    def refusal(self, group: str, other: str) -> str | None:
        g, o = self.elements[group], self.elements[other]
        if g.banned and any(self.find(b) == other for b in g.banned):
            return "ban"
        return self.rules.refusal(g.size, g.counts, o.size, o.counts)

    def union(self, group: str, other: str) -> str:
        g, o = self.elements[group], self.elements[other]
        if g.exists != o.exists:  # an id callers already know beats a new one
            survivor, absorbed = (g, o) if g.exists else (o, g)
        else:
            survivor, absorbed = (g, o) if g.age() <= o.age() else (o, g)
        self.parent[absorbed.id] = survivor.id
        if absorbed.exists:
            self.plan.merges.append(Merge(absorbed.id, survivor.id))
        survivor.changed = True
        survivor.size += absorbed.size
        for kind, n in absorbed.counts.items():
            survivor.counts[kind] = survivor.counts.get(kind, 0) + n
        survivor.banned |= absorbed.banned
        return survivor.id

    def event(self, event: Event) -> None:
        nodes = event.nodes
        anchor = nodes[0]
        group = self.element(anchor, event.timestamp)
        links = self.plan.links
        for node in nodes[1:]:
            other = self.element(node, event.timestamp)
            rule = None if other == group else self.refusal(group, other)
            if rule is None and other != group:
                group = self.union(group, other)
            a, b = (anchor.key, node.key) if anchor.key < node.key else (node.key, anchor.key)
            links.append(Link(a, b, event.source, event.timestamp, event.id, rule is None, rule))
        self._attachments(event, anchor)
        self.accepted.append((event, [n.key for n in nodes]))
        self.plan.applied_events.append(event.id)

    def _attachments(self, event: Event, subject: IdentityNode) -> None:
        """The event's data goes to its subject, the anchor, and nowhere else: a node
        whose link was refused may be someone else's (a shared tablet), and data kept on
        one node follows its own person through later merges, splits and erasure."""
        plan = self.plan
        for name, value in event.traits.items():
            plan.traits.append(
                TraitReport(subject.key, name, value, event.source, event.timestamp, event.id)
            )
        if event.interaction is not None:
            i = event.interaction
            plan.interactions.append(
                InteractionRecord(
                    id=event.id + INTERACTION_ID_SUFFIX,
                    key=subject.key,
                    type=i.type,
                    channel=i.channel,
                    at=event.timestamp,
                    source=event.source,
                    properties=i.properties,
                    event_id=event.id,
                )
            )
        if event.consent is not None:
            c = event.consent
            plan.consents.append(
                ConsentRecord(
                    subject.key,
                    c.purpose,
                    c.status,
                    event.timestamp,
                    c.expires_at,
                    event.source,
                    event.id,
                    recorded_at=self.now,
                    seq=len(plan.consents),
                )
            )

    def finish(self) -> dict[str, EventOutcome]:
        """Fill in the final state; returns the outcome of every planned event by id."""
        plan = self.plan
        find, element_of = self.find, self.element_of
        for key, (node, at) in self.new_nodes.items():
            plan.new_nodes.append(NewNode(node, find(element_of[key]), at))
        outcomes = {}
        for event, keys in self.accepted:
            if len(keys) == 1:
                ids: tuple[str, ...] = (find(element_of[keys[0]]),)
            else:
                ids = tuple(dict.fromkeys([find(element_of[k]) for k in keys]))
            outcomes[event.id] = EventOutcome(event.id, Outcome.ACCEPTED, None, ids)
        # Customers the batch created or grew, that no other absorbed.
        parent = self.parent
        touched = [
            e
            for root, e in self.elements.items()
            if (e.changed or not e.exists) and parent[root] == root
        ]
        for e in sorted(touched, key=lambda e: e.id):
            if not e.exists:
                plan.new_customers.append(NewCustomer(e.id, self.now))
            plan.customer_updates.append(CustomerUpdate(e.id, e.size, e.counts, self.now))
        return outcomes


def plan_batch(
    events: Iterable[Event],
    snapshot: Snapshot,
    rules: Rules,
    new_id: IdFactory,
    now: datetime,
) -> ResolutionPlan:
    """Plan a batch, events in order. Pure: the same inputs give the same plan.

    Inside one event, identity nodes join a growing group in the event's order, from
    highest priority to lowest; a node whose customer cannot join without breaking a
    rule keeps its own customer and its link to the group's anchor is recorded as
    rejected, with the rule. The anchor (the first node: the highest-priority one, first
    in event order on ties) is the event's *subject*: its traits, interaction and
    consent decision attach to that node only.
    Consent decisions are recorded at ``now``, in batch order.
    """
    planner = _Planner(snapshot, rules, new_id, now)
    seen = set(snapshot.seen_events)
    outcomes: list[EventOutcome | str] = []
    erased = snapshot.erased_keys
    for event in events:
        if erased and any(n.key in erased for n in event.nodes):
            outcomes.append(
                EventOutcome(
                    event.id,
                    Outcome.REJECTED,
                    "erased: carries an erased identifier",
                    refusal=Refusal.ERASED,
                )
            )
        elif event.id in seen:
            outcomes.append(
                EventOutcome(
                    event.id, Outcome.DUPLICATE, "already ingested", refusal=Refusal.DUPLICATE
                )
            )
        else:
            seen.add(event.id)
            planner.event(event)
            outcomes.append(event.id)
    accepted = planner.finish()
    plan = planner.plan
    plan.outcomes = [accepted[o] if isinstance(o, str) else o for o in outcomes]
    return plan
