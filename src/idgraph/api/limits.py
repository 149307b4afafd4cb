"""Bounds on the work one GraphQL request may cause, checked before it runs.

After parsing and before validation, one pass over the document measures the operation
to run: its **depth** (fields nested in fields; introspection fields are not counted), its
**aliases** and its **cost**, an upper bound on the number of fields the response can
hold. A list multiplies what is selected under it:

- a field with a ``first`` argument (a connection) by its page size, literal or
  variable (the default page size when absent; the maximum when out of range); its
  ``edges`` are then counted once per page item, not again;
- a list of identity nodes without pages (``LinkExplanation.path``) by the customer
  size cap ``rules.max_size``;
- an introspection list by what the schema holds (its types, their average number of
  fields, …);
- any other list (consents, aliases, payload lists) by ``ApiSettings.list_size``.

Each fragment definition is measured once and its measure reused wherever it is spread
(never expanded), so the pass is linear in the document whatever its fragments do; the
same fragment spread twice in one selection set counts once, as execution merges it.

Before that, documents that would make GraphQL's own validation slow are refused: its
rule that fields of one name can merge compares them in pairs, so a selection set (of
any operation or fragment in the document) may select one response name at most
``max_repeats`` times and spread at most ``max_repeats`` distinct fragments (inline
fragments count into their selection set). The number of tokens is bounded while
parsing (``max_tokens``), as parsing costs time per token.

The verdict on a document whose measure does not depend on its variables is remembered
(as :class:`idgraph.api.phases.Documents` remembers documents parsed and validated): a
repeated query is not measured again.

A query (not a mutation: a change runs to its end, so it is applied and audited whole)
is also given ``ApiSettings.timeout`` seconds of wall-clock time. The timeout can only
interrupt the query while it waits (for the store, for a batch of loads): work done
without waiting is bounded by the cost instead.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.utilities import get_operation_ast
from strawberry.types import ExecutionContext

from idgraph.config import ApiSettings

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
TIMEOUT = "TIMEOUT"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

# Lists whose length the customer size cap bounds (a customer's own identity nodes
# are connections, counted by their page size).
IDENTITY_LISTS = frozenset({("LinkExplanation", "path")})
CEILING = 10**15  # costs saturate here: big enough to refuse, small enough to add fast

ParentType = GraphQLObjectType | GraphQLInterfaceType


class LimitExceeded(GraphQLError):
    """A request refused by a limit, with its stable code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


@dataclass(frozen=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0

    def __add__(self, other: Measure) -> Measure:
        return Measure(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            min(self.cost + other.cost, CEILING),
        )


NOTHING = Measure()


class ListSizes:
    """How many items each list field of a schema is counted for."""

    def __init__(self, settings: ApiSettings, max_size: int) -> None:
        self.settings = settings
        self.sizes: dict[tuple[str, str], int] = dict.fromkeys(IDENTITY_LISTS, max_size)

    def learn(self, schema: GraphQLSchema) -> None:
        """Size the introspection lists by what ``schema`` holds."""
        self.sizes.update(_introspection_sizes(schema))

    def of(
        self,
        parent: ParentType,
        name: str,
        field: GraphQLField,
        node: FieldNode,
        variable: Callable[[str], Any],
    ) -> int:
        """The multiplier of what is selected under ``node`` (``variable`` looks one up)."""
        if "first" in field.args:
            return self.page(node, variable)
        if not is_list_type(get_nullable_type(field.type)):
            return 1
        if name == "edges" and "pageInfo" in parent.fields:
            return 1  # counted by the connection's ``first``
        return self.sizes.get((parent.name, name), self.settings.list_size)

    def page(self, node: FieldNode, variable: Callable[[str], Any]) -> int:
        argument = next((a for a in node.arguments or () if a.name.value == "first"), None)
        value: Any = None
        if argument is not None:
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = variable(argument.value.name.value)
            else:
                value = self.settings.max_page  # a wrong literal: validation refuses it
        if value is None:
            return self.settings.default_page
        if type(value) is not int or not 0 <= value <= self.settings.max_page:
            return self.settings.max_page  # refused when run; count the most it could be
        return value


def _introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """Introspection lists count as long as they are on average in ``schema`` (its types,
    their fields, …): the standard introspection query costs about what it returns, and
    nesting lists in lists still multiplies."""
    types = list(schema.type_map.values())
    fields = [f for t in types for f in getattr(t, "fields", {}).values()]

    def mean(lengths: list[int]) -> int:
        lengths = [n for n in lengths if n]
        return math.ceil(sum(lengths) / len(lengths)) if lengths else 0

    def of_types(attribute: str) -> int:
        return mean([len(getattr(t, attribute, ())) for t in types])

    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): of_types("fields"),
        ("__Type", "inputFields"): of_types("fields"),
        ("__Type", "enumValues"): of_types("values"),
        ("__Type", "interfaces"): of_types("interfaces"),
        ("__Type", "possibleTypes"): of_types("types"),
        ("__Field", "args"): mean([len(f.args) for f in fields if hasattr(f, "args")]),
        ("__Directive", "args"): mean([len(d.args) for d in schema.directives]),
        ("__Directive", "locations"): mean([len(d.locations) for d in schema.directives]),
    }


class Analysis:
    """One pass over a document: each fragment definition is measured once."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        sizes: ListSizes,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.sizes = sizes
        self.variables = variables
        self.read_variables = False  # whether the measure depends on them
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, Measure] = {}

    def operation(self, operation: OperationDefinitionNode) -> Measure:
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root)

    def selections(self, selection_set: SelectionSetNode, parent: ParentType | None) -> Measure:
        total = NOTHING
        spread: set[str] = set()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                spread.add(selection.name.value)
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> Measure:
        if name not in self.measured:
            definition = self.fragments.get(name)
            self.measured[name] = NOTHING  # unknown or cyclic: validation refuses those
            if definition is not None:
                parent = self._type(definition.type_condition.name.value)
                self.measured[name] = self.selections(definition.selection_set, parent)
        return self.measured[name]

    def field(self, node: FieldNode, parent: ParentType | None) -> Measure:
        name = node.name.value
        definition = self._field(parent, name)
        below = NOTHING
        if node.selection_set is not None:
            inner = get_named_type(definition.type) if definition else None
            typed = inner if isinstance(inner, (GraphQLObjectType, GraphQLInterfaceType)) else None
            below = self.selections(node.selection_set, typed)
        times = 1
        if parent is not None and definition is not None:
            times = self.sizes.of(parent, name, definition, node, self.variable)
        depth = 0 if name.startswith("__") or node.selection_set is None else below.depth + 1
        return Measure(
            depth, below.aliases + (node.alias is not None), min(1 + times * below.cost, CEILING)
        )

    def variable(self, name: str) -> Any:
        self.read_variables = True
        return self.variables.get(name)

    def _type(self, name: str) -> ParentType | None:
        named = self.schema.get_type(name)
        return named if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)) else None

    def _field(self, parent: ParentType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is self.schema.query_type and name in ("__schema", "__type"):
            return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
        return None if parent is None else parent.fields.get(name)


def repeats(document: DocumentNode, limit: int) -> str | None:
    """Why the document would be slow to validate, if it would: a response name selected
    more than ``limit`` times in one selection set, or more than ``limit`` distinct
    fragments spread into one. Linear in the document."""
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, (OperationDefinitionNode, FragmentDefinitionNode))
    ]
    while stack:
        names: dict[str, int] = {}
        spreads: set[str] = set()
        flat = [stack.pop()]  # a selection set and the inline fragments it holds
        while flat:
            for selection in flat.pop().selections:
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    names[name] = names.get(name, 0) + 1
                    if selection.selection_set is not None:
                        stack.append(selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    flat.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    spreads.add(selection.name.value)
        most = max(names, key=names.__getitem__, default="")
        if names.get(most, 0) > limit:
            count = names[most]
            return f"{most!r} is selected {count} times in one selection set (at most {limit})"
        if len(spreads) > limit:
            return f"{len(spreads)} fragments are spread in one selection set (at most {limit})"
    return None


class Limits:
    """The limits of one schema, and what it decided about recent documents: a document
    whose measure does not depend on its variables is not measured again."""

    def __init__(self, settings: ApiSettings, max_size: int, remember: int = 512) -> None:
        self.settings = settings
        self.sizes = ListSizes(settings, max_size)
        self.remember = remember
        self.verdicts: OrderedDict[tuple[str, str | None], tuple[str, str] | None] = OrderedDict()

    def check(self, context: ExecutionContext) -> None:
        """Raise :class:`LimitExceeded` if the operation about to run is over a limit."""
        key = (context.query or "", context.operation_name)
        if context.query and key in self.verdicts:
            self.verdicts.move_to_end(key)
            verdict = self.verdicts[key]
        else:
            verdict, constant = self._judge(context)
            if constant and context.query:
                self.verdicts[key] = verdict
                if len(self.verdicts) > self.remember:
                    self.verdicts.popitem(last=False)
        if verdict is not None:
            raise LimitExceeded(*verdict)

    def _judge(self, context: ExecutionContext) -> tuple[tuple[str, str] | None, bool]:
        """The refusal (message, code), if any, and whether it holds for any variables."""
        document = context.graphql_document
        assert document is not None
        reason = repeats(document, self.settings.max_repeats)
        if reason is not None:
            return (f"the query is too complex to check: {reason}", TOO_COMPLEX), True
        operation = get_operation_ast(document, context.operation_name)
        if operation is None:
            return None, True  # no such operation: refused with HTTP 400 before it runs
        analysis = Analysis(context.schema._schema, document, self.sizes, context.variables or {})
        return self.refusal(analysis.operation(operation)), not analysis.read_variables

    def over_time(self) -> LimitExceeded:
        """The error of a query that ran out of its ``ApiSettings.timeout``."""
        return LimitExceeded(
            f"the query ran over the time limit of {self.settings.timeout:g} s", TIMEOUT
        )

    def refusal(self, measure: Measure) -> tuple[str, str] | None:
        settings = self.settings
        if measure.depth > settings.max_depth:
            return (
                f"the query is {measure.depth} fields deep: it exceeds maximum operation "
                f"depth of {settings.max_depth}",
                VALIDATION_FAILED,
            )
        if measure.aliases > settings.max_aliases:
            return (
                f"{measure.aliases} aliases found. Allowed: {settings.max_aliases}",
                VALIDATION_FAILED,
            )
        if measure.cost > settings.max_cost:
            shown = f"{measure.cost:,}" if measure.cost < CEILING else f"over {CEILING:,}"
            return (
                f"the query's cost is {shown}, over the limit of {settings.max_cost:,}: "
                "nested lists multiply (see the README's limits); ask for fewer nested "
                "lists or smaller pages",
                TOO_COMPLEX,
            )
        return None
