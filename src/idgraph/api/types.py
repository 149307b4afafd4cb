"""GraphQL output types. They are built from the domain's read models but are not them:
the schema can evolve without touching the domain, and the reverse."""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from idgraph.api.access import needs
from idgraph.api.context import Info
from idgraph.api.loaders import CountKey, InteractionsKey
from idgraph.api.privacy import shows
from idgraph.api.relay import (
    After,
    Connection,
    ListConnection,
    Node,
    PageSize,
    page,
    page_size,
)
from idgraph.domain.access import AuditEntry, Permission
from idgraph.domain.consent import ConsentView, current_decisions
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    ConsentRecord,
    CustomerRecord,
    InteractionView,
    NodeRecord,
    TraitRecord,
)
from idgraph.domain.model import (
    Link as LinkRecord,
)
from idgraph.domain.profile import merge_traits

PROFILE = needs(Permission.READ_PROFILE)


@strawberry.enum(description="A consent decision.")
class ConsentStatus(Enum):
    GRANTED = strawberry.enum_value("granted", description="The purpose is allowed.")
    DENIED = strawberry.enum_value("denied", description="The purpose is refused.")


@strawberry.enum(description="What happened to one ingested event.")
class EventOutcome(Enum):
    ACCEPTED = strawberry.enum_value("accepted", description="Applied to the graph.")
    DUPLICATE = strawberry.enum_value(
        "duplicate", description="Its id was applied before; nothing changed."
    )
    REJECTED = strawberry.enum_value(
        "rejected", description="Invalid; nothing of it was applied (see `reason`)."
    )


@strawberry.enum(description="Why an event was not applied.")
class EventRefusal(Enum):
    INVALID = strawberry.enum_value(
        "invalid", description="It breaks the event format or its limits (see `path`)."
    )
    ERASED = strawberry.enum_value(
        "erased", description="It carries an erased identifier: refused for good."
    )
    DUPLICATE = strawberry.enum_value(
        "duplicate", description="Its id was applied before; nothing changed."
    )


@strawberry.enum(description="How two identity nodes relate.")
class LinkVerdict(Enum):
    LINKED = strawberry.enum_value(
        "linked", description="Same customer: `path` is the chain of accepted links."
    )
    DIFFERENT_CUSTOMERS = strawberry.enum_value(
        "different_customers",
        description="Different customers: `rejectedLinks` lists evidence that rules refused.",
    )
    UNKNOWN_IDENTIFIER = strawberry.enum_value(
        "unknown_identifier", description="At least one of the two is not in the graph."
    )


@strawberry.enum(description="The resolution rule that refused a link.")
class LinkRule(Enum):
    LIMIT = strawberry.enum_value(
        "limit",
        description="A per-kind limit: the customer would hold too many identity nodes "
        "of the kind in `limitKind`.",
    )
    MAX_SIZE = strawberry.enum_value(
        "max_size", description="The customer would exceed the maximum size."
    )
    BAN = strawberry.enum_value(
        "ban", description="A steward banned the pair (`unlink` with `ban: true`)."
    )
    UNLINK = strawberry.enum_value("unlink", description="A steward split the pair (`unlink`).")


def link_rule(rule: str) -> tuple[LinkRule, str | None]:
    """The enum value and the limited kind of a stored rule (``limit:<kind>``, …)."""
    name, _, kind = rule.partition(":")
    return LinkRule(name), kind or None


@strawberry.enum(description="What an audit record records: the API field or CLI command.")
class AuditOperation(Enum):
    RESOLVE = strawberry.enum_value("resolve", description="`resolve` (API or CLI).")
    CUSTOMER = strawberry.enum_value("customer", description="`customer`.")
    NODE = strawberry.enum_value("node", description="`node`.")
    EXPLAIN_LINK = strawberry.enum_value("explainLink", description="`explainLink`.")
    INGEST = strawberry.enum_value("ingest", description="`ingest`.")
    LINK = strawberry.enum_value("link", description="`link`.")
    UNLINK = strawberry.enum_value("unlink", description="`unlink` (API or CLI).")
    SET_CONSENT = strawberry.enum_value("setConsent", description="`setConsent`.")
    FORGET = strawberry.enum_value("forget", description="`forget` (API or CLI).")
    EXPORT = strawberry.enum_value("export", description="`idgraph export` (CLI).")
    CUSTOMERS = strawberry.enum_value("customers", description="`customers`: one per listed.")
    SEGMENT_EXPORT = strawberry.enum_value(
        "segment export", description="`idgraph segment export` (CLI): one per exported."
    )
    PURGE = strawberry.enum_value(
        "purge", description="`idgraph purge --apply` or a scheduled purge: counts only."
    )


# ---- identity nodes ------------------------------------------------------------------


@strawberry.interface(
    description="Something that identifies a person: an identifier, a device or an account. "
    "A key with only the `resolve` permission sees `kind` and `value`, nothing else."
)
class IdentityNode(Node):
    # Reached only through fields that need `resolve` or `read_profile` already.
    kind: str = strawberry.field(description="`email`, `phone`, `cookie`, …, `device`, `account`.")
    value: str = strawberry.field(description="The normalized value (the key after `kind:`).")
    created_at: datetime = strawberry.field(
        description="When the graph first saw it (UTC).", extensions=PROFILE
    )
    key: strawberry.Private[str]
    customer_id: strawberry.Private[str]

    # Node declares ``id`` as a field; here it is computed (mypy sees an override).
    @strawberry.field(  # type: ignore[misc]
        description="Opaque, stable id (`idn_…`): it holds no personal data.",
        extensions=PROFILE,
    )
    def id(self, info: Info) -> strawberry.ID:
        return info.context.tokens.node_id(self.key)

    @strawberry.field(
        description="The customer it belongs to (null only if it was erased while the "
        "request ran).",
        extensions=PROFILE,
    )
    async def customer(self, info: Info) -> Customer | None:
        record = await info.context.loaders.customer.load(self.customer_id)
        return None if record is None else Customer.from_record(record)


@strawberry.type(description="An identifier such as an email, a phone or a cookie.")
class Identifier(IdentityNode):
    pass


@strawberry.type(description="A device, with the os and model last reported for it.")
class Device(IdentityNode):
    os: str | None = strawberry.field(description="Operating system, e.g. `ios`.")
    model: str | None = strawberry.field(description="Model, e.g. `iPhone 15`.")


@strawberry.type(description="An account in some system, e.g. `shop:42`.")
class Account(IdentityNode):
    system: str = strawberry.field(description="The system the account lives in.")
    account_id: str = strawberry.field(description="The account's id in that system.")


def identity_node(record: NodeRecord) -> IdentityNode:
    key, kind, value, at = record.key, record.kind, record.value, record.created_at
    cid = record.customer_id
    if kind == DEVICE:
        attrs = record.attrs
        return Device(  # type: ignore[call-arg]  # ``id`` is computed, see IdentityNode
            key=key,
            kind=kind,
            value=value,
            created_at=at,
            customer_id=cid,
            os=attrs.get("os"),
            model=attrs.get("model"),
        )
    if kind == ACCOUNT:
        system, _, account_id = value.partition(":")
        return Account(  # type: ignore[call-arg]
            key=key,
            kind=kind,
            value=value,
            created_at=at,
            customer_id=cid,
            system=system,
            account_id=account_id,
        )
    return Identifier(  # type: ignore[call-arg]
        key=key, kind=kind, value=value, created_at=at, customer_id=cid
    )


async def shown_node(info: Info, key: str) -> IdentityNode | None:
    """The identity node with this key, or None when consent hides it (or it is gone):
    a hidden node and an unknown one look the same, as everywhere."""
    customer_id = (await info.context.privacy.visible([key])).get(key)
    if customer_id is None:
        return None
    nodes = await info.context.loaders.nodes.load(customer_id)
    return next((identity_node(n) for n in nodes if n.key == key), None)


# ---- profile data --------------------------------------------------------------------


@strawberry.type(description="A merged trait: the latest report wins; provenance is kept.")
class Trait:
    name: str = strawberry.field(description="Trait name, e.g. `city`.")
    value: JSON = strawberry.field(description="The reported value (any JSON).")
    source: str = strawberry.field(description="The source that reported it.")
    updated_at: datetime = strawberry.field(description="Time of the winning report (UTC).")
    identity_node: str | None = strawberry.field(
        description="Key of the node it was reported for; null when consent hides it.",
        deprecation_reason="Use `node`.",
    )
    event_id: str = strawberry.field(description="Id of the event that reported it.")

    @strawberry.field(
        description="The node it was reported for; null when consent hides it.",
        extensions=PROFILE,
    )
    async def node(self, info: Info) -> IdentityNode | None:
        return None if self.identity_node is None else await shown_node(info, self.identity_node)

    @classmethod
    def from_record(cls, t: TraitRecord, view: ConsentView) -> Trait:
        return cls(
            name=t.name,
            value=t.value,
            source=t.source,
            updated_at=t.at,
            identity_node=t.key if shows(view, t.key) else None,
            event_id=t.event_id,
        )


@strawberry.type(description="The current consent decision for one purpose.")
class Consent:
    purpose: str = strawberry.field(description="Purpose, e.g. `marketing`.")
    status: ConsentStatus = strawberry.field(description="Granted or denied.")
    decided_at: datetime = strawberry.field(description="When the decision was made (UTC).")
    expires_at: datetime | None = strawberry.field(description="When a grant lapses, if ever.")
    source: str = strawberry.field(description="The source that recorded it.")
    identity_node: str | None = strawberry.field(
        description="Key of the node it was recorded on; null when consent hides it.",
        deprecation_reason="Use `node`.",
    )
    event_id: str = strawberry.field(description="Id of the event that recorded it.")

    @strawberry.field(
        description="The node it was recorded on; null when consent hides it.",
        extensions=PROFILE,
    )
    async def node(self, info: Info) -> IdentityNode | None:
        return None if self.identity_node is None else await shown_node(info, self.identity_node)

    @classmethod
    def from_record(cls, c: ConsentRecord, view: ConsentView) -> Consent:
        return cls(
            purpose=c.purpose,
            status=ConsentStatus(c.status.value),
            decided_at=c.at,
            expires_at=c.expires_at,
            source=c.source,
            identity_node=c.key if shows(view, c.key) else None,
            event_id=c.event_id,
        )


@strawberry.type(description="Something a person did: a page view, a purchase, a ticket, ….")
class Interaction(Node):
    """Its global id is built when asked for (:meth:`Tokens.interaction_id`): it seals an
    anchor (one of the identity nodes that performed it, else its customer's id), its
    time and its own id, which is all ``Query.node`` needs to find it again."""

    interaction_id: str = strawberry.field(description="The interaction's own id.")
    type: str = strawberry.field(description="Kind of interaction, e.g. `purchase`.")
    channel: str | None = strawberry.field(description="Channel, e.g. `web`, `store`.")
    at: datetime = strawberry.field(description="When it happened (UTC).")
    source: str = strawberry.field(description="The source that reported it.")
    properties: JSON = strawberry.field(description="Free-form details (a JSON object).")
    event_id: str = strawberry.field(description="Id of the event that reported it.")
    identity_nodes: list[str] = strawberry.field(
        description="Keys of the identity nodes that performed it (those consent shows).",
        deprecation_reason="Use `nodes`.",
    )
    anchor: strawberry.Private[str]

    @strawberry.field(
        description="The identity nodes that performed it (those consent shows).",
        extensions=PROFILE,
    )
    async def nodes(self, info: Info) -> list[IdentityNode]:
        found = await asyncio.gather(*(shown_node(info, key) for key in self.identity_nodes))
        return [n for n in found if n is not None]

    # Node declares ``id`` as a field; here it is computed (mypy sees an override).
    @strawberry.field(  # type: ignore[misc]
        description="Opaque, stable id (`int_…`): it holds no personal data."
    )
    def id(self, info: Info) -> strawberry.ID:
        return info.context.tokens.interaction_id(self.anchor, self.at, self.interaction_id)

    @classmethod
    def from_view(cls, v: InteractionView, view: ConsentView, customer_id: str) -> Interaction:
        keys = [k for k in v.keys if shows(view, k)]
        return cls(  # type: ignore[call-arg]  # ``id`` is computed, see above
            interaction_id=v.id,
            type=v.type,
            channel=v.channel,
            at=v.at,
            source=v.source,
            properties=JSON(dict(v.properties)),
            event_id=v.event_id,
            identity_nodes=keys,
            anchor=min(v.keys, default=customer_id),
        )


@strawberry.type(description="A page of a customer's interactions, newest first.")
class InteractionConnection(Connection[Interaction]):
    counted: strawberry.Private[CountKey]
    visible: strawberry.Private[bool]

    @strawberry.field(
        description="How many interactions pass the connection's filters (`type`, "
        "`since`) in all pages, of those consent lets the caller see."
    )
    async def total_count(self, info: Info) -> int:
        if not self.visible:
            return 0
        return await info.context.loaders.interaction_counts.load(self.counted)


@strawberry.type(description="A page of a customer's identifiers, ordered by key.")
class IdentifierConnection(ListConnection[Identifier]):
    pass


@strawberry.type(description="A page of a customer's devices, ordered by key.")
class DeviceConnection(ListConnection[Device]):
    pass


@strawberry.type(description="A page of a customer's accounts, ordered by key.")
class AccountConnection(ListConnection[Account]):
    pass


@strawberry.type(description="A page of a customer's merged traits, ordered by name.")
class TraitConnection(ListConnection[Trait]):
    pass


@strawberry.type(
    description="How much of a customer consent hides for the request's purpose: "
    "left out of the lists, counted here."
)
class RedactionCounts:
    identifiers: int = strawberry.field(description="Identifiers left out of `identifiers`.")
    devices: int = strawberry.field(description="Devices left out of `devices`.")
    accounts: int = strawberry.field(description="Accounts left out of `accounts`.")
    traits: int = strawberry.field(description="Merged traits left out of `traits`.")
    interactions: int = strawberry.field(description="Interactions left out of `interactions`.")


# ---- customers -----------------------------------------------------------------------


@strawberry.type(
    description="A unified customer: identity nodes connected by accepted links. What it "
    "shows follows consent for the request's purpose (what is left out is counted in "
    "`redacted`). Fields other than `id` and `identifiers` need the `read_profile` "
    "permission: asking one without it is a `FORBIDDEN` error at that field, and, the "
    "fields being non-null, the customer itself is null (GraphQL's null propagation)."
)
class Customer(Node):
    aliases: list[strawberry.ID] = strawberry.field(
        description="Ids of customers merged into this one; each still finds it.",
        extensions=PROFILE,
    )
    created_at: datetime = strawberry.field(
        description="When the customer was created (UTC).", extensions=PROFILE
    )
    updated_at: datetime = strawberry.field(
        description="Last change of its nodes (UTC).", extensions=PROFILE
    )
    split_from: strawberry.ID | None = strawberry.field(
        description="The customer it was split off from, if it was.", extensions=PROFILE
    )
    size: int = strawberry.field(
        description="Number of identity nodes, hidden ones included.", extensions=PROFILE
    )
    # Keys the caller supplied (``resolve``): all a key with only `resolve` may see.
    supplied: strawberry.Private[frozenset[str]]

    @classmethod
    def from_record(cls, c: CustomerRecord, supplied: frozenset[str] = frozenset()) -> Customer:
        return cls(
            id=strawberry.ID(c.id),
            aliases=[strawberry.ID(a) for a in c.aliases],
            created_at=c.created_at,
            updated_at=c.updated_at,
            split_from=None if c.split_from is None else strawberry.ID(c.split_from),
            size=c.size,
            supplied=supplied,
        )

    async def _nodes(self, info: Info) -> tuple[list[IdentityNode], list[IdentityNode]]:
        """Its identity nodes: those consent shows, and those it hides."""
        view = await info.context.privacy.view(self.id)
        shown: list[IdentityNode] = []
        hidden: list[IdentityNode] = []
        for record in await info.context.loaders.nodes.load(self.id):
            (shown if shows(view, record.key) else hidden).append(identity_node(record))
        return shown, hidden

    @strawberry.field(
        description="Identifiers (not devices or accounts) that consent shows, ordered by "
        "key. A key with only the `resolve` permission sees just the one it resolved by.",
        extensions=needs(Permission.RESOLVE),
    )
    async def identifiers(
        self,
        info: Info,
        kind: Annotated[
            str | None, strawberry.argument(description="Only this kind, e.g. `email`.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> IdentifierConnection:
        size = page_size(first, info.context.settings)
        everything = info.context.may(Permission.READ_PROFILE)
        shown, _ = await self._nodes(info)
        found = (
            (n.key, n)
            for n in shown
            if isinstance(n, Identifier)
            and (kind is None or n.kind == kind)
            and (everything or n.key in self.supplied)
        )
        return IdentifierConnection.of(
            found, size, after, info.context.tokens.cursors("identifiers")
        )

    @strawberry.field(description="Devices that consent shows, ordered by key.", extensions=PROFILE)
    async def devices(
        self, info: Info, first: PageSize = None, after: After = None
    ) -> DeviceConnection:
        size = page_size(first, info.context.settings)
        shown, _ = await self._nodes(info)
        found = ((n.key, n) for n in shown if isinstance(n, Device))
        return DeviceConnection.of(found, size, after, info.context.tokens.cursors("devices"))

    @strawberry.field(
        description="Accounts that consent shows, ordered by key.", extensions=PROFILE
    )
    async def accounts(
        self, info: Info, first: PageSize = None, after: After = None
    ) -> AccountConnection:
        size = page_size(first, info.context.settings)
        shown, _ = await self._nodes(info)
        found = ((n.key, n) for n in shown if isinstance(n, Account))
        return AccountConnection.of(found, size, after, info.context.tokens.cursors("accounts"))

    async def _traits(self, info: Info) -> dict[str, TraitRecord]:
        return merge_traits(await info.context.loaders.traits.load(self.id))

    @strawberry.field(
        description="Traits merged across its nodes (the latest report of each name wins), "
        "ordered by name; none unless consent allows the customer's data for the purpose.",
        extensions=PROFILE,
    )
    async def traits(
        self, info: Info, first: PageSize = None, after: After = None
    ) -> TraitConnection:
        size = page_size(first, info.context.settings)
        view = await info.context.privacy.view(self.id)
        merged = await self._traits(info) if view.customer_allows else {}
        found = ((name, Trait.from_record(t, view)) for name, t in merged.items())
        return TraitConnection.of(found, size, after, info.context.tokens.cursors("traits"))

    @strawberry.field(
        description="The current decision per purpose: the latest across its nodes. "
        "A purpose whose latest decision is an expired grant has no current decision. "
        "Shown for every purpose, whatever they decide.",
        extensions=PROFILE,
    )
    async def consents(self, info: Info) -> list[Consent]:
        view = await info.context.privacy.view(self.id)
        records = await info.context.loaders.consents.load(self.id)
        decisions = current_decisions(records, info.context.privacy.now)
        return [Consent.from_record(c, view) for c in decisions.values()]

    @strawberry.field(
        description="What consent left out of this customer, counted.", extensions=PROFILE
    )
    async def redacted(self, info: Info) -> RedactionCounts:
        view = await info.context.privacy.view(self.id)
        _, hidden = await self._nodes(info)
        hides_all = not view.customer_allows
        return RedactionCounts(
            identifiers=sum(isinstance(n, Identifier) for n in hidden),
            devices=sum(isinstance(n, Device) for n in hidden),
            accounts=sum(isinstance(n, Account) for n in hidden),
            traits=len(await self._traits(info)) if hides_all else 0,
            interactions=(
                await info.context.loaders.interaction_counts.load(CountKey(self.id))
                if hides_all
                else 0
            ),
        )

    @strawberry.field(
        description="Interactions of all its nodes, newest first (none unless consent "
        "allows the customer's data for the purpose).",
        extensions=PROFILE,
    )
    async def interactions(
        self,
        info: Info,
        first: PageSize = None,
        after: After = None,
        types: Annotated[
            list[str] | None,
            strawberry.argument(name="type", description="Only these types, e.g. `purchase`."),
        ] = None,
        since: Annotated[
            datetime | None, strawberry.argument(description="Only at or after this time.")
        ] = None,
    ) -> InteractionConnection:
        size = page_size(first, info.context.settings)
        cursors = info.context.tokens.cursors("interactions")
        before = None
        if after is not None:
            at, interaction_id = cursors.decode(after, 2)
            before = (cursors.decode_time(at), interaction_id)
        kinds = tuple(types) if types else None
        view = await info.context.privacy.view(self.id)
        views = (
            await info.context.loaders.interactions.load(
                InteractionsKey(self.id, size + 1, before, kinds, since)
            )
            if view.customer_allows
            else []
        )
        items = [((v.at, v.id), Interaction.from_view(v, view, self.id)) for v in views]
        edges, page_info = page(items, size, after, cursors)
        return InteractionConnection(
            edges=edges,
            page_info=page_info,
            counted=CountKey(self.id, kinds, since),
            visible=view.customer_allows,
        )


# ---- links ---------------------------------------------------------------------------


@strawberry.type(description="Evidence that two identity nodes belong to the same person.")
class Link:
    key_a: strawberry.Private[str]
    key_b: strawberry.Private[str]
    source: str = strawberry.field(description="Source of the evidence.")
    at: datetime = strawberry.field(description="When the evidence was seen (UTC).")
    event_id: str = strawberry.field(description="The event that brought the evidence.")
    accepted: bool = strawberry.field(description="False when a rule refused it.")
    rule: LinkRule | None = strawberry.field(
        description="The rule that refused it; null when accepted."
    )
    limit_kind: str | None = strawberry.field(
        description="For `rule: LIMIT`, the kind whose limit refused it, e.g. `user_id`."
    )

    @classmethod
    def from_record(cls, k: LinkRecord) -> Link:
        rule, kind = link_rule(k.rule) if k.rule else (None, None)
        return cls(
            key_a=k.a,
            key_b=k.b,
            source=k.source,
            at=k.at,
            event_id=k.event_id,
            accepted=k.accepted,
            rule=rule,
            limit_kind=kind,
        )

    @strawberry.field(
        description="Key of one end (the smaller); null when consent hides it.",
        deprecation_reason="Use `nodeA`.",
    )
    async def a(self, info: Info) -> str | None:
        return await info.context.privacy.shown_key(self.key_a)

    @strawberry.field(
        description="Key of the other end; null when consent hides it.",
        deprecation_reason="Use `nodeB`.",
    )
    async def b(self, info: Info) -> str | None:
        return await info.context.privacy.shown_key(self.key_b)

    @strawberry.field(
        description="One end (the smaller key); null when consent hides it.", extensions=PROFILE
    )
    async def node_a(self, info: Info) -> IdentityNode | None:
        return await shown_node(info, self.key_a)

    @strawberry.field(description="The other end; null when consent hides it.", extensions=PROFILE)
    async def node_b(self, info: Info) -> IdentityNode | None:
        return await shown_node(info, self.key_b)

    @strawberry.field(description="The customer `a` belongs to now; null when consent hides `a`.")
    async def customer_a(self, info: Info) -> Customer | None:
        return await _customer_of_shown(info, self.key_a)

    @strawberry.field(description="The customer `b` belongs to now; null when consent hides `b`.")
    async def customer_b(self, info: Info) -> Customer | None:
        return await _customer_of_shown(info, self.key_b)


@strawberry.type(description="A page of links refused by the resolution rules.")
class LinkConnection(Connection[Link]):
    @strawberry.field(description="How many refused links there are in all pages.")
    async def total_count(self, info: Info) -> int:
        return await info.context.graph.store.count_rejected_links()


async def _customer_of_shown(info: Info, key: str) -> Customer | None:
    """The customer of an identity node, unless consent hides the node: a hidden node's
    customer would tie it to a customer id."""
    if await info.context.privacy.shown_key(key) is None:
        return None
    record = await info.context.loaders.customer_of_key(key)
    return None if record is None else Customer.from_record(record)


@strawberry.type(description="One accepted link on the path between two identity nodes.")
class LinkHop:
    from_: str | None = strawberry.field(
        name="from",
        description="Key the hop starts from; null when consent hides it.",
        deprecation_reason="Use `fromNode`.",
    )
    to: str | None = strawberry.field(
        description="Key the hop arrives at; null when consent hides it.",
        deprecation_reason="Use `toNode`.",
    )
    source: str = strawberry.field(description="Source of the evidence.")
    at: datetime = strawberry.field(description="When the evidence was seen (UTC).")
    event_id: str = strawberry.field(description="The event that brought the evidence.")

    @strawberry.field(
        description="The node the hop starts from; null when consent hides it.",
        extensions=PROFILE,
    )
    async def from_node(self, info: Info) -> IdentityNode | None:
        return None if self.from_ is None else await shown_node(info, self.from_)

    @strawberry.field(
        description="The node the hop arrives at; null when consent hides it.",
        extensions=PROFILE,
    )
    async def to_node(self, info: Info) -> IdentityNode | None:
        return None if self.to is None else await shown_node(info, self.to)


@strawberry.type(description="Why two identity nodes are (or are not) the same customer.")
class LinkExplanation:
    a: str = strawberry.field(
        description="Normalized key of the first identity node (the argument `a`).",
        deprecation_reason="Use `nodeA`.",
    )
    b: str = strawberry.field(
        description="Normalized key of the second identity node (the argument `b`).",
        deprecation_reason="Use `nodeB`.",
    )
    verdict: LinkVerdict = strawberry.field(description="How they relate.")
    linked: bool = strawberry.field(description="True when they share a customer.")
    reason: str = strawberry.field(description="The verdict in one sentence.")
    path: list[LinkHop] = strawberry.field(
        description="Shortest chain of accepted links from `a` to `b` (empty unless linked)."
    )
    rejected_links: list[Link] = strawberry.field(
        description="Links between their two customers that rules refused."
    )
    customer_a: Customer | None = strawberry.field(
        description="The customer of `a`; null when `a` is not in the graph or consent hides it."
    )
    customer_b: Customer | None = strawberry.field(
        description="The customer of `b`; null when `b` is not in the graph or consent hides it."
    )

    @strawberry.field(
        description="The identity node `a`; null when it is not in the graph or consent "
        "hides it (the two look the same).",
        extensions=PROFILE,
    )
    async def node_a(self, info: Info) -> IdentityNode | None:
        return await shown_node(info, self.a)

    @strawberry.field(
        description="The identity node `b`; null when it is not in the graph or consent "
        "hides it (the two look the same).",
        extensions=PROFILE,
    )
    async def node_b(self, info: Info) -> IdentityNode | None:
        return await shown_node(info, self.b)


# ---- audit ---------------------------------------------------------------------------


@strawberry.type(description="One read or change of personal data: who, why, what, when.")
class AuditRecord:
    at: datetime = strawberry.field(description="When (UTC).")
    actor: str = strawberry.field(description="The API key's name (`cli` for the CLI).")
    purpose: str = strawberry.field(description="The purpose the request declared.")
    operation: AuditOperation = strawberry.field(description="What was done.")
    customer_id: strawberry.ID | None = strawberry.field(
        description="The customer concerned; null for a lookup that found nothing."
    )
    detail: str = strawberry.field(
        description="Steward actions: the event or parts, and why. `miss`: the lookup "
        "found nothing; `hidden`: it found only what consent hides for the purpose."
    )

    @classmethod
    def from_entry(cls, e: AuditEntry) -> AuditRecord:
        return cls(
            at=e.at,
            actor=e.actor,
            purpose=e.purpose,
            operation=AuditOperation(e.operation),
            customer_id=None if e.customer_id is None else strawberry.ID(e.customer_id),
            detail=e.detail,
        )


@strawberry.type(description="A page of the audit log, newest first.")
class AuditRecordConnection(Connection[AuditRecord]):
    customer_id: strawberry.Private[str | None]

    @strawberry.field(
        description="How many records there are in all pages (for `customerId`, if given)."
    )
    async def total_count(self, info: Info) -> int:
        return await info.context.graph.store.count_audit(customer_id=self.customer_id)
