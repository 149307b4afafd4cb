"""The executor of one GraphQL operation: without the reference cycle graphql-core's
has, and with a short way for fields that only read an attribute.

graphql-core's executor hands every resolver ``info.async_helpers``, two of its own
bound methods, and keeps them in an attribute: executor → helpers → bound method →
executor. An executor that ends is then freed only by the cyclic garbage collector,
with everything it reached: the request's context, its loaders and every record they
read, the collected fields — a few hundred objects per request. Under load they pile
up in the oldest generation, and the full collection that frees them stalls every
request in flight, for up to tens of milliseconds.

Here the helpers reach the executor through a weak reference, so an executor is freed
as soon as its operation ends.

Most of a response is plain fields: a field read from an attribute of the parent, with
no resolver, argument or permission, whose value is a scalar, an enum, or an object
(or a list of them) whose selected fields are plain in turn — a connection's ``edges``
with each edge's ``node`` and the node's ``type`` or ``value``. graphql-core would
build each field's resolve info, call Strawberry's resolver for it through two
wrappers and complete its value step by step (non-null, list, object, leaf); here a
plain field's whole subtree is read and serialized in one walk. Any other outcome (null
where null is not allowed, a value its type cannot serialize or does not accept, an
error) abandons the walk and sends that field the full way, which reports it as
graphql-core does.

Strawberry takes the class through ``Schema(execution_context_class=...)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetails
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

PLAIN_FIELDS = "idgraph-plain-fields"  # the key of plain_fields() in a schema's extensions


class PlainField(NamedTuple):
    attribute: str  # of the parent
    type: GraphQLOutputType


TYPENAME = PlainField("", GraphQLNonNull(GraphQLString))  # "": the parent type's name


PlainFields = dict[tuple[str, str], PlainField]

# An object's selection when every field of it is plain: (response name, field, its
# selection), or None when one is not.
Selection = Sequence[tuple[str, PlainField, Sequence[FieldDetails]]]


class NotPlain(Exception):
    """This value takes the full way."""


class Execution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose resolver helpers hold it weakly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_helpers(self)
        # With middleware, every field must go through it. (Strawberry always passes a
        # manager, empty unless an extension has a ``resolve`` hook.)
        middleware = self.middleware_manager
        self.plain_fields = (
            {} if middleware and middleware.middlewares else schema_plain_fields(self.schema)
        )
        self.plain_selections: dict[tuple[str, int], tuple[object, Selection | None]] = {}

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        *rest: Any,
    ) -> Any:
        plain = self.plain_fields.get((parent_type.name, field_details_list[0].node.name.value))
        if plain is not None:
            try:
                value = getattr(source, plain.attribute)
                return self.complete_plain(plain.type, field_details_list, value)
            except Exception:  # the full way below reports it, as a located error
                pass
        return super().execute_field(parent_type, source, field_details_list, path, *rest)

    def complete_plain(
        self, field_type: GraphQLOutputType, field_details_list: Sequence[FieldDetails], value: Any
    ) -> Any:
        """``value`` completed as graphql-core would, when nothing goes wrong; otherwise
        :class:`NotPlain` (or whatever a serializer raised)."""
        if isinstance(field_type, GraphQLNonNull):
            if value is None:
                raise NotPlain
            field_type = field_type.of_type
        elif value is None:
            return None
        if isinstance(field_type, GraphQLObjectType):
            selection = self.plain_selection(field_type, field_details_list)
            # Strawberry's type checks ignore the resolve info; one that needs it raises
            # here, and the field takes the full way.
            is_type_of = field_type.is_type_of
            if selection is None or (is_type_of and not is_type_of(value, None)):  # type: ignore[arg-type]
                raise NotPlain
            return {
                name: self.complete_plain(
                    field.type,
                    details,
                    getattr(value, field.attribute) if field.attribute else field_type.name,
                )
                for name, field, details in selection
            }
        if isinstance(field_type, GraphQLList):
            if not isinstance(value, list | tuple):
                raise NotPlain
            item_type = field_type.of_type
            return [self.complete_plain(item_type, field_details_list, item) for item in value]
        if isinstance(field_type, GraphQLLeafType):
            serialized = field_type.coerce_output_value(value)
            if serialized is None or serialized is Undefined:
                raise NotPlain
            return serialized
        raise NotPlain  # an interface or a union

    def plain_selection(
        self, object_type: GraphQLObjectType, field_details_list: Sequence[FieldDetails]
    ) -> Selection | None:
        """The fields selected on ``object_type`` if all are plain, found once per
        operation (``field_details_list`` is kept alive with the answer, as graphql-core
        keeps it for its own memo keyed by identity)."""
        key = (object_type.name, id(field_details_list))
        cached = self.plain_selections.get(key)
        if cached is not None:
            return cached[1]
        selection = self.collect_plain(object_type, field_details_list)
        self.plain_selections[key] = (field_details_list, selection)
        return selection

    def collect_plain(
        self, object_type: GraphQLObjectType, field_details_list: Sequence[FieldDetails]
    ) -> Selection | None:
        collected = self.collect_subfields(object_type, field_details_list)  # type: ignore[arg-type]
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            return None
        selection = []
        for name, details in collected.grouped_field_set.items():
            field_name = details[0].node.name.value
            field = (
                TYPENAME
                if field_name == "__typename"
                else self.plain_fields.get((object_type.name, field_name))
            )
            if field is None or any(d.defer_usage is not None for d in details):
                return None
            selection.append((name, field, details))
        return selection


def schema_plain_fields(schema: GraphQLSchema) -> PlainFields:
    """:func:`plain_fields` of ``schema``, found once and kept in its extensions."""
    fields: PlainFields | None = schema.extensions.get(PLAIN_FIELDS)
    if fields is None:
        fields = schema.extensions[PLAIN_FIELDS] = plain_fields(schema)
    return fields


def plain_fields(schema: GraphQLSchema) -> PlainFields:
    """The fields that Strawberry resolves by reading an attribute of the parent (no
    resolver, arguments or field extensions such as permissions): ``(type name, field
    name)`` → the attribute and the field's type."""
    found: PlainFields = {}
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if (
                isinstance(definition, StrawberryField)
                and definition.is_basic_field
                and getattr(field.resolve, "_is_default", False)
                and not field.args
                and definition.python_name
            ):
                found[(graphql_type.name, name)] = PlainField(definition.python_name, field.type)
    return found


def weak_helpers(executor: StrawberryGraphQLCoreExecutionContext) -> GraphQLResolveInfoHelpers:
    """``executor``'s helpers for resolvers, holding it by a weak reference (a resolver
    runs while its executor does, so the reference is alive whenever they are called)."""
    ref = weakref.ref(executor)

    def alive() -> StrawberryGraphQLCoreExecutionContext:
        live = ref()
        if live is None:
            raise RuntimeError("the GraphQL operation has ended")
        return live

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return alive().gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        alive().track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)
