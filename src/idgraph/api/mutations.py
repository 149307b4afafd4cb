"""The ``Mutation`` root. Caller mistakes come back as ``userErrors`` (errors as data);
nothing is written when the input is refused. Each field names the permission it needs;
changes are recorded in the request's audit trail with who (the key's name), the
purpose and, for steward actions, why (``reason``).

Steward actions see the graph as profile reads do for the request's purpose: an
identity node consent hides is refused exactly like one that does not exist (same
error, same work), and what they return names nothing hidden (hidden ends of
``removedLinks`` are null, and counted)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import strawberry

from idgraph.api.access import needs
from idgraph.api.context import Info
from idgraph.api.errors import USER_ERRORS, UserError, user_error
from idgraph.api.inputs import EventInput, IdentifierInput
from idgraph.api.privacy import shows
from idgraph.api.segments import SegmentMutations
from idgraph.api.types import (
    ConsentStatus,
    Customer,
    EventOutcome,
    EventRefusal,
    LinkRule,
    link_rule,
)
from idgraph.domain.access import ErasureReport, Operation, Permission
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    IdentityNode,
    Outcome,
    Refusal,
    utcnow,
)
from idgraph.domain.model import ConsentStatus as DomainConsentStatus
from idgraph.domain.model import EventOutcome as DomainOutcome
from idgraph.errors import (
    Erased,
    Forbidden,
    IdgraphError,
    InvalidInput,
    NotFound,
    RuleViolation,
)

T = TypeVar("T")

STEWARD_SOURCE = "steward"
MANUAL_LINK_PREFIX = "manual-link:"
# One answer whichever of the two is unknown or hidden, or both: it names no side.
NOT_IN_GRAPH = "`a` or `b` is not in the graph"


@strawberry.type(description="The outcome of one event.")
class EventResult:
    event_id: str = strawberry.field(description="The event's id.")
    outcome: EventOutcome = strawberry.field(description="Accepted, duplicate or rejected.")
    reason: str | None = strawberry.field(
        description="Why it was rejected (or a duplicate), for a person."
    )
    code: EventRefusal | None = strawberry.field(
        description="Why it was rejected (or a duplicate), for a program; null when accepted."
    )
    path: list[str] = strawberry.field(
        description="For `INVALID`, the field at fault inside the event, e.g. "
        '`["identifiers", "0", "value"]`; empty otherwise.'
    )
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="Customers its identity nodes belong to after the batch."
    )

    @classmethod
    def from_outcome(cls, o: DomainOutcome) -> EventResult:
        return cls(
            event_id=o.event_id,
            outcome=EventOutcome(o.outcome.value),
            reason=o.reason,
            code=None if o.refusal is None else EventRefusal(o.refusal.value),
            path=list(o.path),
            customer_ids=[strawberry.ID(c) for c in o.customer_ids],
        )


def _refused_event(o: DomainOutcome) -> InvalidInput:
    """The error of an event that was not applied: erased subjects are refused for good."""
    reason = o.reason or "the event was refused"
    return Erased(reason) if o.refusal is Refusal.ERASED else InvalidInput(reason)


async def _customers(info: Info, ids: list[str]) -> list[Customer]:
    """Live customers for ids (aliases followed), each once, in first-seen order."""
    records = await info.context.loaders.customer.load_many(list(dict.fromkeys(ids)))
    unique = {r.id: r for r in records if r is not None}
    return [Customer.from_record(r) for r in unique.values()]


@strawberry.type(description="What `ingest` did.")
class IngestPayload:
    results: list[EventResult] = strawberry.field(description="One per event, in input order.")
    accepted: int = strawberry.field(description="Events applied.")
    duplicates: int = strawberry.field(description="Events ingested before (no change).")
    rejected: int = strawberry.field(description="Invalid events (see their `reason`).")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written.")
    customer_ids: strawberry.Private[list[str]]

    @strawberry.field(description="The customers the accepted events touched.")
    async def customers(self, info: Info) -> list[Customer]:
        return await _customers(info, self.customer_ids)


@strawberry.type(description="A link that `unlink` rejected to split the customer.")
class RemovedLink:
    a: str | None = strawberry.field(description="Key of one end; null when consent hides it.")
    b: str | None = strawberry.field(
        description="Key of the other end; null when consent hides it."
    )
    rule: LinkRule = strawberry.field(description="Recorded rule: `UNLINK`.")


@strawberry.type(description="What `unlink` did.")
class UnlinkPayload:
    removed_links: list[RemovedLink] = strawberry.field(
        description="Accepted links now rejected (the fewest that separate the two)."
    )
    redacted: int = strawberry.field(
        description="Ends of `removedLinks` that consent hides for the purpose, before or "
        "after the split: null there, counted here (`a` and `b` are always named)."
    )
    banned: bool = strawberry.field(description="True when the pair may never merge again.")
    note: str | None = strawberry.field(description="E.g. `already in different customers`.")
    actor: str = strawberry.field(description="Who did it (the API key's name).")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed.")
    customer_ids: strawberry.Private[list[str]]

    @strawberry.field(description="The customers that result: the original one first.")
    async def customers(self, info: Info) -> list[Customer]:
        return await _customers(info, self.customer_ids)


@strawberry.type(description="What `link` did.")
class LinkPayload:
    event: EventResult | None = strawberry.field(
        description="The synthetic `manual-link:…` event that carried the link."
    )
    actor: str = strawberry.field(description="Who did it (the API key's name).")
    user_errors: list[UserError] = strawberry.field(
        description="Why the link was not made: bad input, unknown identifiers, or a rule."
    )
    customer_id: strawberry.Private[str | None]

    @strawberry.field(description="The customer both identity nodes now belong to.")
    async def customer(self, info: Info) -> Customer | None:
        found = await _customers(info, [self.customer_id] if self.customer_id else [])
        return found[0] if found else None


@strawberry.type(description="What `setConsent` did.")
class SetConsentPayload:
    event: EventResult | None = strawberry.field(
        description="The `consent:…` event that recorded the decision."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was recorded: unknown purpose, invalid identifier, an "
        "erased subject."
    )
    customer_id: strawberry.Private[str | None]

    @strawberry.field(description="The customer the subject belongs to.")
    async def customer(self, info: Info) -> Customer | None:
        found = await _customers(info, [self.customer_id] if self.customer_id else [])
        return found[0] if found else None


@strawberry.type(description="How many identity nodes of one kind were erased.")
class KindCount:
    kind: str = strawberry.field(description="`email`, `phone`, …, `device`, `account`.")
    count: int = strawberry.field(description="How many.")


@strawberry.type(description="What `forget` removed, counted; the values are not echoed.")
class Erasure:
    customer_id: strawberry.ID = strawberry.field(description="The erased customer's id.")
    identity_nodes: list[KindCount] = strawberry.field(description="Identity nodes, by kind.")
    aliases: int = strawberry.field(description="Absorbed ids that named it.")
    links: int = strawberry.field(description="Links touching its nodes.")
    traits: int = strawberry.field(description="Trait reports.")
    interactions: int = strawberry.field(description="Interactions no one else performed.")
    consents: int = strawberry.field(description="Consent decisions.")

    @classmethod
    def from_report(cls, r: ErasureReport) -> Erasure:
        return cls(
            customer_id=strawberry.ID(r.customer_id),
            identity_nodes=[
                KindCount(kind=k, count=n) for k, n in sorted(r.identity_nodes.items())
            ],
            aliases=r.aliases,
            links=r.links,
            traits=r.traits,
            interactions=r.interactions,
            consents=r.consents,
        )


@strawberry.type(description="What `forget` did.")
class ForgetPayload:
    erasure: Erasure | None = strawberry.field(description="What was removed.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was removed.")


class _Refused(Exception):
    """Ends a mutation early with a user error (and the event written, if one was)."""

    def __init__(
        self, exc: IdgraphError, field: str | None = None, event: EventResult | None = None
    ) -> None:
        super().__init__(str(exc))
        self.error = user_error(exc, field)
        self.event = event


def _normalized(info: Info, a: IdentifierInput, b: IdentifierInput) -> list[IdentityNode]:
    normalizer = info.context.graph.normalizer
    nodes = []
    for field, identifier in (("a", a), ("b", b)):
        try:
            nodes.append(identifier.normalize(normalizer))
        except InvalidInput as exc:
            raise _Refused(exc, field) from None
    return nodes


def _event_fields(a: IdentityNode, b: IdentityNode) -> dict[str, Any]:
    """The fields of an event carrying both nodes (one device and one account at most)."""
    if a.kind == b.kind and a.kind in (DEVICE, ACCOUNT):
        raise _Refused(InvalidInput(f"cannot link two {a.kind}s: an event carries one"), "b")
    fields: dict[str, Any] = {"identifiers": []}
    for node in (a, b):
        if node.kind == DEVICE:
            fields["device"] = {"id": node.value}
        elif node.kind == ACCOUNT:
            fields["account"] = {"system": node.attrs["system"], "id": node.attrs["id"]}
        else:
            fields["identifiers"].append({"kind": node.kind, "value": node.value})
    return fields


async def _visible(info: Info, operation: Operation, nodes: list[IdentityNode]) -> dict[str, str]:
    """The customer of each node; refused with one NOT_FOUND that names no side unless
    every node is in the graph and consent shows it for the purpose. A hidden node and
    an unknown one take the same path (:meth:`Privacy.visible`) to the same answer; the
    refusal is audited as a miss."""
    keys = [n.key for n in nodes]
    found = await info.context.privacy.visible(keys)
    if any(key not in found for key in keys):
        info.context.audit.record(operation, [None], "miss")
        raise _Refused(NotFound(NOT_IN_GRAPH))
    return found


async def _refusing_rule(info: Info, a: str, b: str) -> str:
    for link in await info.context.graph.store.links_of([a]):
        if {link.a, link.b} == {a, b} and not link.accepted:
            return link.rule or "unknown rule"
    return "unknown rule"


Reason = Annotated[
    str | None, strawberry.argument(description="Why: kept in the audit log with who did it.")
]
Identity = Annotated[IdentifierInput, strawberry.argument(description="An identity node.")]


def _user_error(exc: _Refused | IdgraphError) -> UserError:
    return exc.error if isinstance(exc, _Refused) else user_error(exc)


def _not_unlinked(actor: str, exc: _Refused | IdgraphError) -> UnlinkPayload:
    return UnlinkPayload(
        removed_links=[],
        redacted=0,
        banned=False,
        note=None,
        actor=actor,
        user_errors=[_user_error(exc)],
        customer_ids=[],
    )


@strawberry.type(description="Change the identity graph.")
class Mutation(SegmentMutations):
    @strawberry.mutation(
        description="Ingest a batch of events (same format and rules as `idgraph ingest`): "
        "invalid events are rejected one by one, the valid ones applied together. "
        "At most 1000 events per call; more is refused whole. Needs `ingest`.",
        extensions=needs(Permission.INGEST),
    )
    async def ingest(
        self,
        info: Info,
        events: Annotated[list[EventInput], strawberry.argument(description="The events.")],
    ) -> IngestPayload | None:
        limit = info.context.settings.max_batch
        if len(events) > limit:
            error = InvalidInput(f"at most {limit} events per call, got {len(events)}")
            return IngestPayload(
                results=[],
                accepted=0,
                duplicates=0,
                rejected=0,
                user_errors=[user_error(error, "events")],
                customer_ids=[],
            )
        result = await info.context.graph.ingest([e.raw() for e in events])
        info.context.metrics.record_batch(result)
        customer_ids = [c for o in result.outcomes for c in o.customer_ids]
        info.context.audit.record(Operation.INGEST, customer_ids)
        return IngestPayload(
            results=[EventResult.from_outcome(o) for o in result.outcomes],
            accepted=result.count(Outcome.ACCEPTED),
            duplicates=result.count(Outcome.DUPLICATE),
            rejected=result.count(Outcome.REJECTED),
            user_errors=[],
            customer_ids=customer_ids,
        )

    @strawberry.mutation(
        description="Split two identity nodes into different customers (a steward action). "
        "With `ban`, later evidence can never join them again. A node that consent hides "
        "for the purpose is refused like an unknown one (`NOT_FOUND`, naming neither "
        "side). Needs `steward`.",
        extensions=needs(Permission.STEWARD),
    )
    async def unlink(
        self,
        info: Info,
        a: Identity,
        b: Identity,
        ban: Annotated[
            bool, strawberry.argument(description="Never merge these two again.")
        ] = False,
        reason: Reason = None,
    ) -> UnlinkPayload | None:
        context = info.context
        actor = context.actor
        try:
            nodes = _normalized(info, a, b)
            found = await _visible(info, Operation.UNLINK, nodes)
            key_a, key_b = (n.key for n in nodes)
            before = await context.privacy.view(found[key_a])
            plan = await context.graph.unlink(key_a, key_b, ban=ban)
        except NotFound:  # gone since it was looked up: the same answer as above
            return _not_unlinked(actor, _Refused(NotFound(NOT_IN_GRAPH)))
        except (_Refused, *USER_ERRORS) as exc:
            return _not_unlinked(actor, exc)
        context.refresh()
        parts = [p.customer_id for p in sorted(plan.parts, key=lambda p: p.is_new)]
        detail = f"unlink ban={ban} parts={','.join(parts)} reason={reason or ''}"
        context.audit.record(Operation.UNLINK, [plan.customer_id], detail)
        ends = sorted({key for x, y, _ in plan.rejected_links for key in (x, y)})
        shown_now = await context.privacy.visible(ends)
        # a and b are the caller's and were shown; another end is shown if consent shows
        # it both before the split (in a and b's customer) and after it
        shown = set(found) | {k for k in shown_now if shows(before, k)}
        return UnlinkPayload(
            removed_links=[
                RemovedLink(
                    a=x if x in shown else None,
                    b=y if y in shown else None,
                    rule=link_rule(rule)[0],
                )
                for x, y, rule in plan.rejected_links
            ],
            redacted=sum((x not in shown) + (y not in shown) for x, y, _ in plan.rejected_links),
            banned=plan.ban is not None,
            note=plan.note or None,
            actor=actor,
            user_errors=[],
            customer_ids=parts or [plan.customer_id],
        )

    @strawberry.mutation(
        description="Link two known identity nodes (a steward action): ingests a synthetic "
        'event `{id: "manual-link:<uuid>", source: "steward", identifiers: [a, b]}`. '
        "The resolution rules still apply; a refusal comes back as a RULE_VIOLATION. "
        "A node that consent hides for the purpose is refused like an unknown one "
        "(`NOT_FOUND`, naming neither side). Needs `steward`.",
        extensions=needs(Permission.STEWARD),
    )
    async def link(
        self, info: Info, a: Identity, b: Identity, reason: Reason = None
    ) -> LinkPayload | None:
        actor = info.context.actor
        try:
            event, customer_id = await _link(info, a, b, reason)
        except _Refused as exc:
            return LinkPayload(
                event=exc.event, actor=actor, user_errors=[exc.error], customer_id=None
            )
        return LinkPayload(event=event, actor=actor, user_errors=[], customer_id=customer_id)

    @strawberry.mutation(
        description="Record a consent decision for an identity node (kept as history; the "
        "latest live decision counts). Needs `set_consent`, and a key that may use the "
        "`purpose` recorded (else `FORBIDDEN`).",
        extensions=needs(Permission.SET_CONSENT),
    )
    async def set_consent(
        self,
        info: Info,
        subject: Annotated[
            IdentifierInput, strawberry.argument(description="The identity node it is for.")
        ],
        purpose: Annotated[str, strawberry.argument(description="A configured purpose.")],
        status: Annotated[ConsentStatus, strawberry.argument(description="Granted or denied.")],
        # not ``source``: field extensions take the parent object under that name
        origin: Annotated[
            str, strawberry.argument(name="source", description="Where it was given.")
        ],
        expires_at: Annotated[
            datetime | None, strawberry.argument(description="When a grant lapses.")
        ] = None,
    ) -> SetConsentPayload | None:
        graph = info.context.graph
        if graph.settings.purpose(purpose) is not None and not info.context.key.may_use(purpose):
            raise Forbidden(f"this key may not record consent for the purpose {purpose!r}")
        try:
            key = _field("subject", lambda: subject.normalize(graph.normalizer).key)
        except _Refused as exc:
            return SetConsentPayload(event=None, user_errors=[exc.error], customer_id=None)
        try:
            outcome = await graph.set_consent(
                key, purpose, DomainConsentStatus[status.name], expires_at=expires_at, source=origin
            )
        except InvalidInput as exc:  # the subject is valid by now: the purpose is unknown
            error = user_error(exc, "purpose")
            return SetConsentPayload(event=None, user_errors=[error], customer_id=None)
        event = EventResult.from_outcome(outcome)
        if outcome.outcome is Outcome.REJECTED:
            error = user_error(_refused_event(outcome), "subject")
            return SetConsentPayload(event=event, user_errors=[error], customer_id=None)
        info.context.audit.record(
            Operation.SET_CONSENT, outcome.customer_ids, f"{purpose}={status.value}"
        )
        customer_id = outcome.customer_ids[0] if outcome.customer_ids else None
        return SetConsentPayload(event=event, user_errors=[], customer_id=customer_id)

    @strawberry.mutation(
        description="Erase the whole customer an identifier belongs to: its identity "
        "nodes, links, traits, interactions and consents. Replayed events that carry an "
        "erased identifier are refused (`erased`). Needs `forget` (admin).",
        extensions=needs(Permission.FORGET),
    )
    async def forget(
        self,
        info: Info,
        identifier: Annotated[
            IdentifierInput, strawberry.argument(description="Any of the customer's.")
        ],
    ) -> ForgetPayload | None:
        graph = info.context.graph
        try:
            key = _field("identifier", lambda: identifier.normalize(graph.normalizer).key)
            report = await graph.forget(key)
        except (_Refused, *USER_ERRORS) as exc:
            return ForgetPayload(erasure=None, user_errors=[_user_error(exc)])
        info.context.audit.record(Operation.FORGET, [report.customer_id])
        return ForgetPayload(erasure=Erasure.from_report(report), user_errors=[])


def _field(name: str, parse: Callable[[], T]) -> T:
    """``parse()``, its InvalidInput turned into a user error on the argument ``name``."""
    try:
        return parse()
    except InvalidInput as exc:
        raise _Refused(exc, name) from None


async def _link(
    info: Info, a: IdentifierInput, b: IdentifierInput, reason: str | None
) -> tuple[EventResult, str]:
    graph = info.context.graph
    nodes = _normalized(info, a, b)
    fields = _event_fields(*nodes)
    keys = [n.key for n in nodes]
    await _visible(info, Operation.LINK, nodes)
    event_id = f"{MANUAL_LINK_PREFIX}{uuid.uuid4()}"
    raw = {"id": event_id, "timestamp": utcnow().isoformat(), "source": STEWARD_SOURCE, **fields}
    result = await graph.ingest([raw])
    info.context.refresh()
    info.context.metrics.record_batch(result)
    outcome = result.outcomes[0]
    if outcome.outcome is not Outcome.ACCEPTED:
        raise _Refused(_refused_event(outcome))
    customers = await graph.store.customer_ids_of(keys)
    info.context.audit.record(
        Operation.LINK, sorted(set(customers.values())), f"event={event_id} reason={reason or ''}"
    )
    event = EventResult.from_outcome(outcome)
    if customers[keys[0]] != customers[keys[1]]:
        rule = await _refusing_rule(info, keys[0], keys[1])
        raise _Refused(RuleViolation(f"the rules refused the link ({rule})"), event=event)
    return event, customers[keys[0]]
