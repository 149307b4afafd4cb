"""The ``Query`` root: thin resolvers that parse arguments, ask loaders or the service,
and map the result to GraphQL types."""

from __future__ import annotations

from typing import Annotated

import strawberry

from idgraph.api.context import Info
from idgraph.api.explain import explain_link
from idgraph.api.inputs import IdentifierInput
from idgraph.api.relay import (
    INTERACTION_PREFIX,
    Connection,
    Node,
    decode,
    decode_time,
    page,
    page_size,
)
from idgraph.api.types import Customer, Interaction, Link, LinkExplanation, identity_node


@strawberry.type(description="Read the identity graph.")
class Query:
    @strawberry.field(
        description="The customer of an identifier, or null if no customer has it. "
        "The identifier is normalized exactly like ingested ones."
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
        return None if record is None else Customer.from_record(record)

    @strawberry.field(
        description="A customer by id. An absorbed (alias) id returns the customer it "
        "was merged into; an unknown id returns null."
    )
    async def customer(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A customer id or alias.")],
    ) -> Customer | None:
        record = await info.context.loaders.customer.load(id)
        return None if record is None else Customer.from_record(record)

    @strawberry.field(
        description="Any object by its global id: a Customer (`cus_…`), an identity node "
        "(its key, `email:alice@example.com`) or an Interaction (`Interaction:…`)."
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        loaders = info.context.loaders
        if id.startswith(INTERACTION_PREFIX):
            return await _interaction(info, id.removeprefix(INTERACTION_PREFIX))
        if ":" in id:
            customer_id = await loaders.customer_id_of_key.load(id)
            if customer_id is None:
                return None
            nodes = await loaders.nodes.load(customer_id)
            return next((identity_node(n) for n in nodes if n.key == id), None)
        record = await loaders.customer.load(id)
        return None if record is None else Customer.from_record(record)

    @strawberry.field(
        description="Why two identifiers are, or are not, the same customer: the shortest "
        "path of accepted links (each hop with source, time and event), or the customers "
        "they belong to and the links between them that rules refused."
    )
    async def explain_link(
        self,
        info: Info,
        a: Annotated[IdentifierInput, strawberry.argument(description="One identifier.")],
        b: Annotated[IdentifierInput, strawberry.argument(description="The other.")],
    ) -> LinkExplanation | None:
        graph = info.context.graph
        return await explain_link(
            graph, a.normalize(graph.normalizer).key, b.normalize(graph.normalizer).key
        )

    @strawberry.field(
        description="Links refused by the resolution rules, newest first: for data stewards."
    )
    async def conflicts(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="Page size: default 20, at most 100.")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="`endCursor` of the previous page.")
        ] = None,
    ) -> Connection[Link]:
        size = page_size(first, info.context.settings)
        before = None
        if after is not None:
            at, a, b = decode(after, "after", 3)
            before = (decode_time(at, "after"), a, b)
        links = await info.context.graph.store.rejected_links(limit=size + 1, before=before)
        items = [((k.at, k.a, k.b), Link.from_record(k)) for k in links]
        edges, page_info = page(items, size, after)
        return Connection(edges=edges, page_info=page_info)


async def _interaction(info: Info, token: str) -> Interaction | None:
    """The interaction an ``Interaction:`` id points at: the id holds one of its identity
    nodes, its time and its own id; the customer of that node lists it at that position."""
    key, at, interaction_id = decode(token, "id", 3)
    customer_id = await info.context.loaders.customer_id_of_key.load(key)
    if customer_id is None:
        return None
    when = decode_time(at, "id")
    # (at, id) orders interactions; the first one strictly before (at, id + "\0") is it.
    views = await info.context.graph.store.interactions_of(
        customer_id, limit=1, before=(when, interaction_id + "\0"), since=when
    )
    return Interaction.from_view(views[0]) if views and views[0].id == interaction_id else None
