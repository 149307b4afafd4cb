"""The ``Mutation`` root. Caller mistakes come back as ``userErrors`` (errors as data);
nothing is written when the input is refused. Steward actions are recorded with who
(``X-Actor``) and why (``reason``) in the store's audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import strawberry

from idgraph.api.context import Info
from idgraph.api.errors import USER_ERRORS, UserError, user_error
from idgraph.api.inputs import EventInput, IdentifierInput
from idgraph.api.types import Customer, EventOutcome
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    IdentityNode,
    Outcome,
    utcnow,
)
from idgraph.domain.model import EventOutcome as DomainOutcome
from idgraph.errors import IdgraphError, InvalidInput, NotFound, RuleViolation

STEWARD_PURPOSE = "stewardship"

STEWARD_SOURCE = "steward"
MANUAL_LINK_PREFIX = "manual-link:"


@strawberry.type(description="The outcome of one event.")
class EventResult:
    event_id: str = strawberry.field(description="The event's id.")
    outcome: EventOutcome = strawberry.field(description="Accepted, duplicate or rejected.")
    reason: str | None = strawberry.field(description="Why it was rejected (or a duplicate).")
    customer_ids: list[strawberry.ID] = strawberry.field(
        description="Customers its identity nodes belong to after the batch."
    )

    @classmethod
    def from_outcome(cls, o: DomainOutcome) -> EventResult:
        return cls(
            event_id=o.event_id,
            outcome=EventOutcome(o.outcome.value),
            reason=o.reason,
            customer_ids=[strawberry.ID(c) for c in o.customer_ids],
        )


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
    a: str = strawberry.field(description="Key of one end.")
    b: str = strawberry.field(description="Key of the other end.")
    rule: str = strawberry.field(description="Recorded rule: `unlink`.")


@strawberry.type(description="What `unlink` did.")
class UnlinkPayload:
    removed_links: list[RemovedLink] = strawberry.field(
        description="Accepted links now rejected (the fewest that separate the two)."
    )
    banned: bool = strawberry.field(description="True when the pair may never merge again.")
    note: str | None = strawberry.field(description="E.g. `already in different customers`.")
    actor: str = strawberry.field(description="Who did it (the `X-Actor` header).")
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
    actor: str = strawberry.field(description="Who did it (the `X-Actor` header).")
    user_errors: list[UserError] = strawberry.field(
        description="Why the link was not made: bad input, unknown identifiers, or a rule."
    )
    customer_id: strawberry.Private[str | None]

    @strawberry.field(description="The customer both identity nodes now belong to.")
    async def customer(self, info: Info) -> Customer | None:
        found = await _customers(info, [self.customer_id] if self.customer_id else [])
        return found[0] if found else None


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


async def _refusing_rule(info: Info, a: str, b: str) -> str:
    for link in await info.context.graph.store.links_of([a]):
        if {link.a, link.b} == {a, b} and not link.accepted:
            return link.rule or "unknown rule"
    return "unknown rule"


Reason = Annotated[
    str | None, strawberry.argument(description="Why: kept in the audit log with who did it.")
]
Identity = Annotated[IdentifierInput, strawberry.argument(description="An identity node.")]


@strawberry.type(description="Change the identity graph.")
class Mutation:
    @strawberry.mutation(
        description="Ingest a batch of events (same format and rules as `idgraph ingest`): "
        "invalid events are rejected one by one, the valid ones applied together. "
        "At most 1000 events per call; more is refused whole."
    )
    async def ingest(
        self,
        info: Info,
        events: Annotated[list[EventInput], strawberry.argument(description="The events.")],
    ) -> IngestPayload:
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
        return IngestPayload(
            results=[EventResult.from_outcome(o) for o in result.outcomes],
            accepted=result.count(Outcome.ACCEPTED),
            duplicates=result.count(Outcome.DUPLICATE),
            rejected=result.count(Outcome.REJECTED),
            user_errors=[],
            customer_ids=[c for o in result.outcomes for c in o.customer_ids],
        )

    @strawberry.mutation(
        description="Split two identity nodes into different customers (a steward action). "
        "With `ban`, later evidence can never join them again."
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
    ) -> UnlinkPayload:
        actor = info.context.actor
        try:
            key_a, key_b = (n.key for n in _normalized(info, a, b))
            plan = await info.context.graph.unlink(key_a, key_b, ban=ban)
        except (_Refused, *USER_ERRORS) as exc:
            error = exc.error if isinstance(exc, _Refused) else user_error(exc)
            return UnlinkPayload(
                removed_links=[],
                banned=False,
                note=None,
                actor=actor,
                user_errors=[error],
                customer_ids=[],
            )
        parts = [p.customer_id for p in sorted(plan.parts, key=lambda p: p.is_new)]
        detail = f"unlink ban={ban} parts={','.join(parts)} reason={reason or ''}"
        await info.context.graph.audit(actor, STEWARD_PURPOSE, "unlink", [plan.customer_id], detail)
        return UnlinkPayload(
            removed_links=[RemovedLink(a=x, b=y, rule=rule) for x, y, rule in plan.rejected_links],
            banned=plan.ban is not None,
            note=plan.note or None,
            actor=actor,
            user_errors=[],
            customer_ids=parts or [plan.customer_id],
        )

    @strawberry.mutation(
        description="Link two known identity nodes (a steward action): ingests a synthetic "
        'event `{id: "manual-link:<uuid>", source: "steward", identifiers: [a, b]}`. '
        "The resolution rules still apply; a refusal comes back as a RULE_VIOLATION."
    )
    async def link(
        self, info: Info, a: Identity, b: Identity, reason: Reason = None
    ) -> LinkPayload:
        actor = info.context.actor
        try:
            event, customer_id = await _link(info, a, b, reason)
        except _Refused as exc:
            return LinkPayload(
                event=exc.event, actor=actor, user_errors=[exc.error], customer_id=None
            )
        return LinkPayload(event=event, actor=actor, user_errors=[], customer_id=customer_id)


async def _link(
    info: Info, a: IdentifierInput, b: IdentifierInput, reason: str | None
) -> tuple[EventResult, str]:
    graph = info.context.graph
    nodes = _normalized(info, a, b)
    fields = _event_fields(*nodes)
    keys = [n.key for n in nodes]
    known = await graph.store.customer_ids_of(keys)
    for field, key in zip(("a", "b"), keys, strict=True):
        if key not in known:
            raise _Refused(NotFound(f"no identity node {key}"), field)
    event_id = f"{MANUAL_LINK_PREFIX}{uuid.uuid4()}"
    raw = {"id": event_id, "timestamp": utcnow().isoformat(), "source": STEWARD_SOURCE, **fields}
    result = await graph.ingest([raw])
    info.context.metrics.record_batch(result)
    outcome = result.outcomes[0]
    if outcome.outcome is not Outcome.ACCEPTED:
        raise _Refused(InvalidInput(outcome.reason or "the event was refused"))
    customers = await graph.store.customer_ids_of(keys)
    await graph.audit(
        info.context.actor,
        STEWARD_PURPOSE,
        "link",
        sorted(set(customers.values())),
        f"event={event_id} reason={reason or ''}",
    )
    event = EventResult.from_outcome(outcome)
    if customers[keys[0]] != customers[keys[1]]:
        rule = await _refusing_rule(info, keys[0], keys[1])
        raise _Refused(RuleViolation(f"the rules refused the link ({rule})"), event=event)
    return event, customers[keys[0]]
