"""The ``Query`` root: thin resolvers that parse arguments, ask loaders or the service,
and map the result to GraphQL types. Each field names the permission it needs; reads of
personal data are recorded in the request's audit trail."""

from __future__ import annotations

from typing import Annotated

import strawberry

from idgraph.api.access import needs
from idgraph.api.audit import AuditRecord
from idgraph.api.context import Info
from idgraph.api.explain import explain_link
from idgraph.api.inputs import IdentifierInput
from idgraph.api.loaders import InteractionsKey
from idgraph.api.privacy import shows
from idgraph.api.relay import (
    INTERACTION_PREFIX,
    After,
    Connection,
    Node,
    PageSize,
    decode,
    decode_time,
    page,
    page_size,
)
from idgraph.api.types import Customer, Interaction, Link, LinkExplanation, identity_node
from idgraph.domain.access import Permission
from idgraph.errors import InvalidInput


@strawberry.type(description="Read the identity graph.")
class Query:
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
        record = await info.context.loaders.customer_of_key(node.key)
        if record is None:
            return None
        info.context.audit.record("resolve", [record.id])
        return Customer.from_record(record, supplied=frozenset([node.key]))

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
            return None
        info.context.audit.record("customer", [record.id])
        return Customer.from_record(record)

    @strawberry.field(
        description="Any object by its global id: a Customer (`cus_…`), an identity node "
        "(its key, `email:alice@example.com`) or an Interaction (`Interaction:…`). "
        "What consent hides for the purpose is null, exactly like an unknown id. "
        "Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        context = info.context
        if id.startswith(INTERACTION_PREFIX):
            return await _interaction(info, id.removeprefix(INTERACTION_PREFIX))
        if ":" in id:
            customer_id = await context.loaders.customer_id_of_key.load(id)
            if customer_id is None or not shows(await context.privacy.view(customer_id), id):
                return None
            nodes = await context.loaders.nodes.load(customer_id)
            context.audit.record("node", [customer_id])
            return next((identity_node(n) for n in nodes if n.key == id), None)
        record = await context.loaders.customer.load(id)
        if record is None:
            return None
        context.audit.record("node", [record.id])
        return Customer.from_record(record)

    @strawberry.field(
        description="Why two identifiers are, or are not, the same customer: the shortest "
        "path of accepted links (each hop with source, time and event), or the customers "
        "they belong to and the links between them that rules refused. An identifier "
        "consent hides is answered as unknown. Needs `steward`.",
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
        context.audit.record(
            "explainLink", [c.id for c in (result.customer_a, result.customer_b) if c]
        )
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
    ) -> Connection[Link] | None:
        size = page_size(first, info.context.settings)
        before = None
        if after is not None:
            at, a, b = decode(after, "after", 3)
            before = (decode_time(at, "after"), a, b)
        links = await info.context.graph.store.rejected_links(limit=size + 1, before=before)
        items = [((k.at, k.a, k.b), Link.from_record(k)) for k in links]
        edges, page_info = page(items, size, after)
        return Connection(edges=edges, page_info=page_info)

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
    ) -> Connection[AuditRecord] | None:
        size = page_size(first, info.context.settings)
        before = None
        if after is not None:
            [seq] = decode(after, "after", 1)
            if not seq.isdigit():
                raise InvalidInput("after: not a valid token from this API")
            before = int(seq)
        entries = await info.context.graph.store.audit_log(
            customer_id=customer_id, limit=size + 1, before=before
        )
        items = [((str(e.seq),), AuditRecord.from_entry(e)) for e in entries]
        edges, page_info = page(items, size, after)
        return Connection(edges=edges, page_info=page_info)


async def _interaction(info: Info, token: str) -> Interaction | None:
    """The interaction an ``Interaction:`` id points at: the id holds an anchor (one of
    its identity nodes, or its customer's id), its time and its own id; the anchor's
    customer lists it at that position. Null unless consent shows the customer's data."""
    anchor, at, interaction_id = decode(token, "id", 3)
    loaders = info.context.loaders
    if ":" in anchor:
        customer_id = await loaders.customer_id_of_key.load(anchor)
    else:
        record = await loaders.customer.load(anchor)
        customer_id = None if record is None else record.id
    if customer_id is None:
        return None
    view = await info.context.privacy.view(customer_id)
    if not view.customer_allows or (":" in anchor and not shows(view, anchor)):
        return None
    when = decode_time(at, "id")
    # (at, id) orders interactions; the first one strictly before (at, id + "\0") is it.
    views = await info.context.loaders.interactions.load(
        InteractionsKey(customer_id, 1, (when, interaction_id + "\0"), None, when)
    )
    if not views or views[0].id != interaction_id:
        return None
    info.context.audit.record("node", [customer_id])
    return Interaction.from_view(views[0], view, customer_id)
