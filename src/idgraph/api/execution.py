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

Most fields of a response are plain leaves: a scalar or an enum read from an attribute
of the parent (an interaction's ``type``, an identifier's ``value``), with no resolver,
argument or permission. graphql-core would build each one's resolve info, call
Strawberry's resolver for it through two wrappers and complete the value through the
non-null and leaf steps; here such a field reads the attribute and serializes it. Any
other outcome (null where null is not allowed, a value its type cannot serialize, an
error) goes the full way, which reports it as graphql-core does.

Strawberry takes the class through ``Schema(execution_context_class=...)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

PLAIN_LEAVES = "idgraph-plain-leaves"  # the key of plain_leaves() in a schema's extensions

PlainLeaves = dict[tuple[str, str], tuple[str, GraphQLLeafType, bool]]


class Execution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose resolver helpers hold it weakly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_helpers(self)
        # With middleware, every field must go through it. (Strawberry always passes a
        # manager, empty unless an extension has a ``resolve`` hook.)
        middleware = self.middleware_manager
        self.plain_leaves = (
            {} if middleware and middleware.middlewares else schema_plain_leaves(self.schema)
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        *rest: Any,
    ) -> Any:
        leaf = self.plain_leaves.get((parent_type.name, field_details_list[0].node.name.value))
        if leaf is not None:
            attribute, leaf_type, nullable = leaf
            try:
                value = getattr(source, attribute)
                if value is None:
                    if nullable:
                        return None
                else:
                    serialized = leaf_type.coerce_output_value(value)
                    if serialized is not None and serialized is not Undefined:
                        return serialized
            except Exception:  # the full way below reports it, as a located error
                pass
        return super().execute_field(parent_type, source, field_details_list, path, *rest)


def schema_plain_leaves(schema: GraphQLSchema) -> PlainLeaves:
    """:func:`plain_leaves` of ``schema``, found once and kept in its extensions."""
    leaves: PlainLeaves | None = schema.extensions.get(PLAIN_LEAVES)
    if leaves is None:
        leaves = schema.extensions[PLAIN_LEAVES] = plain_leaves(schema)
    return leaves


def plain_leaves(schema: GraphQLSchema) -> PlainLeaves:
    """The fields that Strawberry resolves by reading an attribute of the parent (no
    resolver, arguments or field extensions such as permissions) and whose type is a
    scalar or an enum: ``(type name, field name)`` → ``(attribute, type, nullable)``."""
    found: PlainLeaves = {}
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for name, field in graphql_type.fields.items():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            leaf_type = get_nullable_type(field.type)
            if (
                isinstance(definition, StrawberryField)
                and definition.is_basic_field
                and getattr(field.resolve, "_is_default", False)
                and not field.args
                and definition.python_name
                and is_leaf_type(leaf_type)
            ):
                nullable = not is_non_null_type(field.type)
                found[(graphql_type.name, name)] = (definition.python_name, leaf_type, nullable)
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
