"""Segments over GraphQL: ``customers(filter:, segment:)``, ``segments`` and the
``saveSegment`` / ``deleteSegment`` mutations (the filter language: docs/segments.md).

A listing shows what ``resolve`` would show of each customer for the request's purpose
(the same ``Customer`` type, the same consent and redaction), and leaves out, uncounted,
every customer that purpose may not see at all. Cursors are opaque and bound to the
listing (its filter, segment and sort): a cursor of another listing is refused. The
page size is capped like every connection's; the filter's size by the parser's bounds.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, NewType

import strawberry

from idgraph.api.access import needs
from idgraph.api.context import Info
from idgraph.api.errors import USER_ERRORS, UserError, user_error
from idgraph.api.relay import After, Connection, Edge, PageInfo, PageSize, page_size
from idgraph.api.types import Customer
from idgraph.domain.access import Operation, Permission
from idgraph.domain.segment import SavedSegment
from idgraph.errors import FilterError, IdgraphError
from idgraph.segments import BadName, Segments, check_name, fingerprint
from idgraph.store.port import SegmentSort

# A filter's JSON: the schema maps it to the scalar below (``scalar_overrides``).
CustomerFilter = NewType("CustomerFilter", object)
CUSTOMER_FILTER = strawberry.scalar(
    name="CustomerFilter",
    description="A segment filter, as JSON (the same as `idgraph segment --filter`): one "
    'condition such as `{"trait": {"name": "city", "eq": "Lima"}}`, `identifier`, '
    "`interactions`, `consent`, `createdAt`, `updatedAt`, `source`, `size`, or their "
    "combinations with `all`, `any`, `not`. An invalid filter is refused with "
    "`BAD_USER_INPUT`, naming the place inside it (`filter.all[2].interactions.atLeast`).",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)


@strawberry.enum(description="The order of a customer listing; ties go to the customer id.")
class CustomerSort(Enum):
    UPDATED_AT_DESC = strawberry.enum_value(
        SegmentSort.UPDATED_AT_DESC, description="Latest change first (the default)."
    )
    UPDATED_AT_ASC = strawberry.enum_value(
        SegmentSort.UPDATED_AT_ASC, description="Oldest change first."
    )
    CREATED_AT_DESC = strawberry.enum_value(
        SegmentSort.CREATED_AT_DESC, description="Newest customer first."
    )
    CREATED_AT_ASC = strawberry.enum_value(
        SegmentSort.CREATED_AT_ASC, description="Oldest customer first."
    )


@strawberry.type(description="A page of customers matching a filter.")
class CustomerConnection(Connection[Customer]):
    total_count: int = strawberry.field(
        description="How many customers match in all pages (only those the purpose may see)."
    )


@strawberry.type(description="A saved segment: a named filter.")
class Segment:
    name: str = strawberry.field(description="Its name, unique.")
    description: str = strawberry.field(description="What it is for.")
    filter: CustomerFilter = strawberry.field(description="Its filter, as saved.")
    created_at: datetime = strawberry.field(description="When it was saved (UTC).")

    @strawberry.field(
        description="How many customers match it now, among those the purpose may see "
        "(computed when asked)."
    )
    async def member_count(self, info: Info) -> int:
        segments = _segments(info)
        query = segments.query(segments.parse(self.filter, "segment"), info.context.purpose)
        return await info.context.graph.store.count_segment(query)

    @classmethod
    def of(cls, segment: SavedSegment) -> Segment:
        return cls(
            name=segment.name,
            description=segment.description,
            filter=segment.filter,
            created_at=segment.created_at,
        )


@strawberry.type(description="What `saveSegment` did.")
class SaveSegmentPayload:
    segment: Segment | None = strawberry.field(description="The segment saved.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was saved.")


@strawberry.type(description="What `deleteSegment` did.")
class DeleteSegmentPayload:
    name: str | None = strawberry.field(description="The name of the segment deleted.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was deleted.")


def _segments(info: Info) -> Segments:
    graph = info.context.graph
    return Segments(graph.store, graph.settings)


Filter = Annotated[
    CustomerFilter | None,
    strawberry.argument(description="Which customers (docs/segments.md)."),
]
SegmentName = Annotated[
    str | None,
    strawberry.argument(description="A saved segment's name; with `filter`, both must match."),
]


@strawberry.type
class SegmentQueries:
    @strawberry.field(
        description="Customers matching a filter or a saved segment, paged: each as "
        "`resolve` shows it for the purpose; customers the purpose may not see at all are "
        "neither listed nor counted. Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def customers(
        self,
        info: Info,
        filter: Filter = None,
        segment: SegmentName = None,
        first: PageSize = None,
        after: After = None,
        sort: Annotated[
            CustomerSort, strawberry.argument(description="The order (default: latest change).")
        ] = CustomerSort.UPDATED_AT_DESC,
    ) -> CustomerConnection:
        context = info.context
        size = page_size(first, context.settings)
        order = SegmentSort[sort.name]
        segments = _segments(info)
        query = segments.query(await segments.selection(filter, segment), context.purpose)
        cursors = context.tokens.cursors(f"customers:{fingerprint(filter, segment, order)}")
        position = None
        if after is not None:
            at, customer_id = cursors.decode(after, 2)
            position = (cursors.decode_time(at), customer_id)
        found = await context.graph.store.segment_page(
            query, first=size, after=position, sort=order
        )
        context.audit.record(Operation.CUSTOMERS, [c.id for c in found.customers])
        edges: list[Edge[Customer]] = [
            Edge(
                node=Customer.from_record(c),
                position=(c.created_at if order.by_created else c.updated_at, c.id),
                cursors=cursors,
            )
            for c in found.customers
        ]
        page_info = PageInfo(
            has_next_page=found.has_next,
            has_previous_page=after is not None,
            first=edges[0] if edges else None,
            last=edges[-1] if edges else None,
        )
        return CustomerConnection(edges=edges, page_info=page_info, total_count=found.total_count)

    @strawberry.field(
        description="The saved segments, by name. Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def segments(self, info: Info) -> list[Segment] | None:
        return [Segment.of(s) for s in await _segments(info).list()]


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(
        description="Save a filter under a name (replacing a segment of that name). The "
        "filter is checked first. Needs `read_profile`: whoever may list customers may "
        "name a listing.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def save_segment(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="1-64 letters, digits, _ . -")],
        filter: Annotated[
            CustomerFilter,
            strawberry.argument(description="Which customers (docs/segments.md)."),
        ],
        description: Annotated[str, strawberry.argument(description="What it is for.")] = "",
    ) -> SaveSegmentPayload | None:
        try:
            saved = await _segments(info).save(check_name(name), filter, description)
        except USER_ERRORS as exc:
            return SaveSegmentPayload(segment=None, user_errors=[_error(exc)])
        return SaveSegmentPayload(segment=Segment.of(saved), user_errors=[])

    @strawberry.mutation(
        description="Delete a saved segment. Needs `read_profile`.",
        extensions=needs(Permission.READ_PROFILE),
    )
    async def delete_segment(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The segment's name.")],
    ) -> DeleteSegmentPayload | None:
        try:
            await _segments(info).delete(name)
        except USER_ERRORS as exc:
            return DeleteSegmentPayload(name=None, user_errors=[user_error(exc, "name")])
        return DeleteSegmentPayload(name=name, user_errors=[])


def _error(exc: IdgraphError) -> UserError:
    """The user error of ``saveSegment``, on the argument at fault."""
    if isinstance(exc, FilterError):
        return user_error(exc, "filter")
    return user_error(exc, "name" if isinstance(exc, BadName) else None)
