"""Relay conventions: the ``Node`` interface, connections with opaque cursors, page sizes.

Ids are readable and globally unique because their forms cannot collide:

- a customer id has no colon: ``cus_3f2a…``;
- an identity node's id is its key, ``kind:value``: ``email:alice@example.com``,
  ``device:ab12``, ``account:shop:42`` (kinds are lower-case);
- an interaction's id starts with ``Interaction:`` (upper case, so never a kind),
  followed by an opaque token that locates it.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from idgraph.config import ApiSettings
from idgraph.errors import InvalidInput

PageSize = Annotated[
    int | None, strawberry.argument(description="Page size: default 20, at most 100.")
]
After = Annotated[str | None, strawberry.argument(description="`endCursor` of the previous page.")]

INTERACTION_PREFIX = "Interaction:"

T = TypeVar("T")


@strawberry.interface(
    description="An object with a globally unique id, refetchable with `node(id:)`."
)
class Node:
    id: strawberry.ID = strawberry.field(description="Globally unique, stable id.")


@strawberry.type(description="Where a page of a connection sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow `endCursor`.")
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with `after` (items precede it)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge: pass it as `after` for the next page."
    )


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item.")
    position: strawberry.Private[tuple[Any, ...]]

    @strawberry.field(description="Opaque position of this item.")
    def cursor(self) -> str:
        return encode(*self.position)


@strawberry.type(description="A page of a list, Relay style.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Paging state.")


def page(
    items: list[tuple[tuple[Any, ...], T]], size: int, after: str | None
) -> tuple[list[Edge[T]], PageInfo]:
    """Edges and page info from ``(position, item)`` pairs fetched with ``limit=size + 1``;
    a position is what :func:`encode` turns into the item's cursor."""
    edges = [Edge(node=item, position=position) for position, item in items[:size]]
    return edges, PageInfo(
        has_next_page=len(items) > size,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor() if edges else None,
        end_cursor=edges[-1].cursor() if edges else None,
    )


def page_size(first: int | None, settings: ApiSettings) -> int:
    if first is None:
        return settings.default_page
    if first < 0 or first > settings.max_page:
        raise InvalidInput(f"first: must be between 0 and {settings.max_page}, got {first}")
    return first


def encode(*parts: Any) -> str:
    """An opaque token for a tuple of strings and datetimes."""
    plain = [p.isoformat() if isinstance(p, datetime) else p for p in parts]
    raw = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, what: str, n: int) -> list[str]:
    """The ``n`` strings in a token made by :func:`encode`; InvalidInput if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error):
        parts = None
    if not isinstance(parts, list) or len(parts) != n or not all(isinstance(p, str) for p in parts):
        raise InvalidInput(f"{what}: {token[:64]!r} is not a valid token from this API")
    return parts


def decode_time(value: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what}: not a valid token from this API") from None
