"""What a query will read of a customer, told from its selection before it resolves.

``resolve`` reads its customer with every part the selection asks for (identity nodes,
consent, traits, the first page of interactions) in one store call: one read
transaction instead of a DataLoader dispatch, and a store round trip, per part. The
parts land in the request's loaders, where the fields find them (see
:meth:`idgraph.api.loaders.Loaders.prime`).

This is only a forecast: the fields still check permissions, apply consent and read
what they need themselves. A part forecast but not used costs a little reading; a part
not forecast (an ``after`` cursor, a ``since`` filter, an invalid argument) is read by
its field as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types.nodes import convert_arguments

from idgraph.api.context import Info
from idgraph.config import ApiSettings
from idgraph.store.port import InteractionPage, ProfileRead

# Customer fields (GraphQL names) and what each reads besides the customer's record.
# The node and trait connections page in memory over the whole list, so any page of
# them (an ``after`` cursor too) is served by the one read.
NEEDS_NODES = frozenset({"identifiers", "devices", "accounts", "redacted"})
NEEDS_TRAITS = frozenset({"traits", "redacted"})
NEEDS_CONSENTS = NEEDS_NODES | NEEDS_TRAITS | {"consents", "interactions"}


def profile_read(info: Info) -> ProfileRead:
    """The parts of a customer the current field's selection will read.

    It walks graphql-core's nodes (``info._raw_info``) rather than Strawberry's
    ``selected_fields``, which converts the whole selection, arguments and directives of
    every nested field included, for the one level needed here."""
    raw = info._raw_info
    seen: set[str] = set()
    fields = [f for node in raw.field_nodes for f in _fields(raw, node.selection_set, seen)]
    names = {f.name.value for f in fields}
    pages = [f for f in fields if f.name.value == "interactions"]
    return ProfileRead(
        nodes=not names.isdisjoint(NEEDS_NODES),
        consents=not names.isdisjoint(NEEDS_CONSENTS),
        traits=not names.isdisjoint(NEEDS_TRAITS),
        interactions=(
            _first_page(convert_arguments(raw, pages[0].arguments), info.context.settings)
            if len(pages) == 1
            else None
        ),
    )


def _fields(
    raw: GraphQLResolveInfo, selections: SelectionSetNode | None, seen: set[str]
) -> Iterator[FieldNode]:
    """The fields of a selection set, those inside fragments included. Each named
    fragment is walked once (``seen``), however often it is spread: what it selects is
    the same each time, and fragments spreading fragments twice over would otherwise
    cost twice per level."""
    for selection in selections.selections if selections else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(raw, selection.selection_set, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = raw.fragments.get(selection.name.value)
            yield from _fields(raw, fragment.selection_set if fragment else None, seen)


def _first_page(arguments: dict[str, Any], settings: ApiSettings) -> InteractionPage | None:
    """The page ``Customer.interactions`` will read for these arguments (as the query
    spells them: a literal integer is still text), if it is a first page without a time
    filter and its arguments are valid; else None, and the field reads it itself."""
    if arguments.get("after") is not None or arguments.get("since") is not None:
        return None
    first, types = arguments.get("first"), arguments.get("type")
    try:
        size = settings.default_page if first is None else int(first)
    except ValueError:
        return None
    if not 0 <= size <= settings.max_page:
        return None
    if isinstance(types, str):  # a single value where a list is expected
        types = [types]
    if types is not None and not (
        isinstance(types, list) and all(isinstance(t, str) for t in types)
    ):
        return None
    return InteractionPage(limit=size + 1, types=tuple(types) if types else None)
