"""Relay conventions: the ``Node`` interface, connections with opaque cursors, page sizes.

Ids and cursors are opaque: see :mod:`idgraph.api.tokens`, which makes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Generic, Self, TypeVar

import strawberry

from idgraph.api.tokens import Cursors
from idgraph.config import ApiSettings
from idgraph.errors import InvalidInput

PageSize = Annotated[
    int | None, strawberry.argument(description="Page size: default 20, at most 100.")
]
After = Annotated[str | None, strawberry.argument(description="`endCursor` of the previous page.")]

T = TypeVar("T")


@strawberry.interface(
    description="An object with a globally unique id, refetchable with `node(id:)`."
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="Globally unique, stable, opaque id: `cus_…` for a customer, `idn_…` for "
        "an identity node, `int_…` for an interaction. It holds no personal data."
    )


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    position: strawberry.Private[tuple[Any, ...]]
    cursors: strawberry.Private[Cursors]

    @strawberry.field(
        description="Opaque position of this item, valid only as `after` of the same connection."
    )
    def cursor(self) -> str:
        return self.cursors.encode(self.position)


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    """Its cursors are sealed only when asked for (a token costs some microseconds)."""

    has_next_page: bool = strawberry.field(description="More items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with `after` (items precede it)."
    )
    first: strawberry.Private[Edge[Any] | None]
    last: strawberry.Private[Edge[Any] | None]

    @strawberry.field(description="Cursor of the first edge; null when the page is empty.")
    def start_cursor(self) -> str | None:
        return None if self.first is None else self.first.cursor()

    @strawberry.field(
        description="Cursor of the last edge: pass it as `after` for the next page; null "
        "when the page is empty."
    )
    def end_cursor(self) -> str | None:
        return None if self.last is None else self.last.cursor()


@strawberry.type(description="A page of a list, Relay style.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Paging state.")


@strawberry.type(description="A page of a list read whole (a customer's identity nodes or traits).")
class ListConnection(Connection[T]):
    """A connection over a list small enough to read whole (a customer holds at most
    ``rules.max_size`` identity nodes): paged in memory, in the order of a string that
    is unique in the list (a node's key, a trait's name). The cursor seals that string,
    so it never shows it."""

    total_count: int = strawberry.field(
        description="How many items pass the connection's filters in all pages, of those "
        "the caller may see."
    )

    @classmethod
    def of(
        cls, items: Iterable[tuple[str, T]], size: int, after: str | None, cursors: Cursors
    ) -> Self:
        """The page of ``size`` items after the cursor ``after`` of ``(order, item)``
        pairs, in any order."""
        ordered = sorted(items, key=lambda pair: pair[0])
        rest = ordered
        if after is not None:
            [last] = cursors.decode(after, 1)
            rest = [pair for pair in ordered if pair[0] > last]
        edges, page_info = page(
            [((k,), item) for k, item in rest[: size + 1]], size, after, cursors
        )
        return cls(edges=edges, page_info=page_info, total_count=len(ordered))


def page(
    items: list[tuple[tuple[Any, ...], T]], size: int, after: str | None, cursors: Cursors
) -> tuple[list[Edge[T]], PageInfo]:
    """Edges and page info from ``(position, item)`` pairs fetched with ``limit=size + 1``;
    ``cursors`` turns a position into the item's cursor."""
    edges = [Edge(node=item, position=position, cursors=cursors) for position, item in items[:size]]
    return edges, PageInfo(
        has_next_page=len(items) > size,
        has_previous_page=after is not None,
        first=edges[0] if edges else None,
        last=edges[-1] if edges else None,
    )


def page_size(first: int | None, settings: ApiSettings) -> int:
    if first is None:
        return settings.default_page
    if first < 0 or first > settings.max_page:
        raise InvalidInput(f"first: must be between 0 and {settings.max_page}, got {first}")
    return first
