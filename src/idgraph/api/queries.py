"""The ``Query`` root: thin resolvers that parse arguments, ask loaders or the service,
and map the result to GraphQL types. Each field names the permission it needs; reads of
personal data are recorded in the request's audit trail, and so are lookups that find
nothing (detail ``miss``) or only what consent hides (detail ``hidden``): a key cannot
probe who is a customer without a trace."""

from __future__ import annotations

from typing import Annotated

import strawberry

from idgraph.api.access import needs
from idgraph.api.context import Info
from idgraph.api.explain import explain_link
from idgraph.api.inputs import IdentifierInput
from idgraph.api.loaders import InteractionsKey
from idgraph.api.lookahead import profile_read
from idgraph.api.privacy import NOBODY
from idgraph.api.relay import After, Node, PageSize, page, page_size
from idgraph.api.segments import SegmentQueries
from idgraph.api.tokens import InteractionRef, NodeRef
from idgraph.api.types import (
    AuditRecord,
    AuditRecordConnection,
    Customer,
    IdentityNode,
    Interaction,
    Link,
    LinkConnection,
    LinkExplanation,
    identity_node,
)
from idgraph.api.viewer import Viewer
from idgraph.domain.access import Operation, Permission
from idgraph.errors import InvalidInput

MISS = "miss"
HIDDEN = "hidden"


@strawberry.type(description="Read the identity graph.")
class Query(SegmentQueries):
    @strawberry.field(
        description="The API key making the request: its name, role, permissions and "
        "purposes. Needs a key only (no permission, no purpose): nothing in it is personal "
        "data or secret."
    )
    def viewer(self, info: Info) -> Viewer:
        context = info.context
        return Viewer.of(context.key, None if context.purpose is None else context.purpose.name)

    @strawberry.field(
        description="The customer of an identifier, or null if no customer has it. "
        "The identifier is normalized exactly like ingested ones. The caller supplied it, "
        "so a customer is found even when consent hides the identifier itself; it is then "
        "left out of `identifiers` (and counted in `redacted`). Needs `resolve`.",
        extensions=needs(Permission.RESOLVE),
    )
    async def resolve(
        self,
        info: Info,
        identifier: Annotated[
            IdentifierInput, strawberry.argument(description="Any known identifier.")
        ],
    ) -> Customer | None:
        node = identifier.normalize(info.context.graph.normalizer)
        profile = await info.context.loaders.profile(node.key, profile_read(info))
        if profile is None:
            info.context.audit.record(Operation.RESOLVE, [None], MISS)
            return None
        info.context.audit.record(Operation.RESOLVE, [profile.customer.id])
        return Customer.from_record(profile.customer, supplied=frozenset([node.key]))

    @strawberry.field(
        description="A customer by id. An absorbed (alias) id returns the customer it "
        "was merged into; an unknown id returns null. Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def customer(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A customer id or alias.")],
    ) -> Customer | None:
        record = await info.context.loaders.customer.load(id)
        if record is None:
            info.context.audit.record(Operation.CUSTOMER, [None], MISS)
            return None
        info.context.audit.record(Operation.CUSTOMER, [record.id])
        return Customer.from_record(record)

    @strawberry.field(
        description="Any object by its global id: a Customer (`cus_…`), an identity node "
        "(`idn_…`) or an Interaction (`int_…`). Ids are opaque and hold no personal data; "
        "an `idn_`/`int_` id this API did not make is refused (`BAD_USER_INPUT`). What "
        "consent hides for the purpose is null, exactly like an unknown id. "
        "Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        context = info.context
        ref = context.tokens.parse_id(id)
        if isinstance(ref, InteractionRef):
            return await _interaction(info, ref)
        if isinstance(ref, NodeRef):
            return await _identity_node(info, ref.key)
        record = await context.loaders.customer.load(ref.id)
        if record is None:
            context.audit.record(Operation.NODE, [None], MISS)
            return None
        context.audit.record(Operation.NODE, [record.id])
        return Customer.from_record(record)

    @strawberry.field(
        description="Why two identifiers are, or are not, the same customer: the shortest "
        "path of accepted links (each hop with source, time and event), or the customers "
        "they belong to and the links between them that rules refused. An identifier "
        "consent hides is answered as unknown; the reason names the arguments (`a`, `b`), "
        "never a key. Needs `steward`.",
        extensions=needs(Permission.STEWARD),
    )
    async def explain_link(
        self,
        info: Info,
        a: Annotated[IdentifierInput, strawberry.argument(description="One identifier.")],
        b: Annotated[IdentifierInput, strawberry.argument(description="The other.")],
    ) -> LinkExplanation | None:
        context = info.context
        graph = context.graph
        result = await explain_link(
            graph,
            context.privacy,
            a.normalize(graph.normalizer).key,
            b.normalize(graph.normalizer).key,
        )
        found = [c.id for c in (result.customer_a, result.customer_b) if c]
        context.audit.record(Operation.EXPLAIN_LINK, found or [None], "" if found else MISS)
        return result

    @strawberry.field(
        description="Links refused by the resolution rules, newest first: for data "
        "stewards. Needs `steward`.",
        extensions=needs(Permission.STEWARD),
    )
    async def conflicts(
        self,
        info: Info,
        first: PageSize = None,
        after: After = None,
    ) -> LinkConnection | None:
        size = page_size(first, info.context.settings)
        cursors = info.context.tokens.cursors("conflicts")
        before = None
        if after is not None:
            at, a, b = cursors.decode(after, 3)
            before = (cursors.decode_time(at), a, b)
        links = await info.context.graph.store.rejected_links(limit=size + 1, before=before)
        items = [((k.at, k.a, k.b), Link.from_record(k)) for k in links]
        edges, page_info = page(items, size, after, cursors)
        return LinkConnection(edges=edges, page_info=page_info)

    @strawberry.field(
        description="Who read or changed personal data, under which purpose, when: "
        "newest first, optionally for one customer id. Needs `read_audit` (admin).",
        extensions=needs(Permission.READ_AUDIT),
    )
    async def audit_log(
        self,
        info: Info,
        customer_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this customer id.")
        ] = None,
        first: PageSize = None,
        after: After = None,
    ) -> AuditRecordConnection | None:
        size = page_size(first, info.context.settings)
        cursors = info.context.tokens.cursors("auditLog")
        before = None
        if after is not None:
            [seq] = cursors.decode(after, 1)
            if not seq.isdigit():
                raise InvalidInput("after: not a cursor of auditLog from this API")
            before = int(seq)
        await info.context.audit_writer.flush()  # the log holds what was handed over
        entries = await info.context.graph.store.audit_log(
            customer_id=customer_id, limit=size + 1, before=before
        )
        items = [((str(e.seq),), AuditRecord.from_entry(e)) for e in entries]
        edges, page_info = page(items, size, after, cursors)
        return AuditRecordConnection(edges=edges, page_info=page_info, customer_id=customer_id)


async def _identity_node(info: Info, key: str) -> IdentityNode | None:
    """The identity node with this key, if consent shows it (hidden ones are absent)."""
    context = info.context
    customer_id = (await context.privacy.visible([key])).get(key)
    nodes = await context.loaders.nodes.load(customer_id) if customer_id else []
    node = next((identity_node(n) for n in nodes if n.key == key), None)
    if node is None:
        hidden = await context.loaders.customer_id_of_key.load(key)
        context.audit.record(Operation.NODE, [hidden], HIDDEN if hidden else MISS)
        return None
    context.audit.record(Operation.NODE, [customer_id])
    return node


async def _interaction(info: Info, ref: InteractionRef) -> Interaction | None:
    """The interaction an ``int_…`` id names: its anchor's customer lists it at its
    position (time, id). Null unless consent shows the customer's data."""
    context = info.context
    if ":" in ref.anchor:
        customer_id = await context.loaders.customer_id_of_key.load(ref.anchor)
    else:
        record = await context.loaders.customer.load(ref.anchor)
        customer_id = None if record is None else record.id
    view = await context.privacy.view(customer_id or NOBODY)
    # (at, id) orders interactions; the first one strictly before (at, id + "\0") is it.
    position = (ref.at, ref.interaction_id + "\0")
    views = await context.loaders.interactions.load(
        InteractionsKey(customer_id or NOBODY, 1, position, None, ref.at)
    )
    found = views[0] if views and views[0].id == ref.interaction_id else None
    if customer_id is None or found is None:
        context.audit.record(Operation.NODE, [None], MISS)
        return None
    if not view.customer_allows:
        context.audit.record(Operation.NODE, [customer_id], HIDDEN)
        return None
    context.audit.record(Operation.NODE, [customer_id])
    return Interaction.from_view(found, view, customer_id)
