"""Resolvers called directly: a field whose arguments are scalars, lists of them or input
objects made of them, and whose only extensions are permission checks, resolves in one
call instead of through Strawberry's wrappers.

For every field with a resolver or an extension, Strawberry builds its ``Info``,
converts each argument (a chain of type checks and a name conversion per argument, even
when the value is a string or a number that converts to itself), chains the field's
extensions with ``functools.partial``, and calls the resolver under two more wrappers:
~20 µs a field, a tenth of a ``resolve``'s CPU. The fields replaced here need none of
that conversion: their resolver gets the same keyword arguments, ``self`` and ``info``
as Strawberry would give it, once the permission checks have passed; a field without a
resolver (an attribute that needs a permission) is read as Strawberry reads it. Any other
field (enums, input objects holding other kinds, other extensions, ``root``/``parent``
parameters) keeps Strawberry's resolver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any, Literal, cast

import strawberry
from graphql import GraphQLResolveInfo, GraphQLSchema
from strawberry.relay import GlobalID
from strawberry.scalars import is_scalar
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    WithStrawberryObjectDefinition,
    has_object_definition,
)
from strawberry.types.field import StrawberryField

from idgraph.api.access import Needs

# An argument's conversion: None when it passes as it is (a scalar), else the function
# making its value: ``list`` copies a list of scalars, as Strawberry does (graphql-core
# hands every request the same default list), and an input object is built from its map.
Conversion = Callable[[Any], Any] | None

STRAWBERRYS = "idgraph-strawberry-resolve"  # the key of Strawberry's resolver, kept


def use_direct_resolvers(schema: strawberry.Schema) -> None:
    """Give ``schema``'s fields that qualify a direct resolver (see the module's doc);
    Strawberry's stays in the field's extensions, under :data:`STRAWBERRYS`."""
    converter = schema.schema_converter
    if converter._exception_handler_specs:  # Strawberry's resolver applies them
        return
    for graphql_type in schema._schema.type_map.values():
        for field in getattr(graphql_type, "fields", {}).values():
            definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(definition, StrawberryField) or not hasattr(field, "resolve"):
                continue
            resolver = direct_resolver(definition, schema.config, converter.scalar_registry)
            if resolver is not None:
                field.extensions = {**field.extensions, STRAWBERRYS: field.resolve}
                field.resolve = resolver


def strawberrys_resolvers(schema: GraphQLSchema) -> dict[tuple[str, str], Any]:
    """The fields given a direct resolver → Strawberry's resolver of each."""
    return {
        (type_name, name): field.extensions[STRAWBERRYS]
        for type_name, graphql_type in schema.type_map.items()
        for name, field in getattr(graphql_type, "fields", {}).items()
        if STRAWBERRYS in (field.extensions or {})
    }


def direct_resolver(
    field: StrawberryField, config: StrawberryConfig, registry: Mapping[object, Any]
) -> Callable[..., Any] | None:
    """``field``'s direct resolver, or None when it does not qualify (a subclass of
    ``StrawberryField``, such as a relay connection's, may resolve in its own way)."""
    if type(field) is not StrawberryField or not all(type(e) is Needs for e in field.extensions):
        return None
    checks = tuple(e.check for e in field.extensions if isinstance(e, Needs))
    resolver = field.base_resolver
    if resolver is None:
        if not checks:  # a basic field: Strawberry reads it without a wrapper
            return None
        read, name = config.default_resolver, field.python_name

        def read_attribute(source: Any, info: GraphQLResolveInfo) -> Any:
            for check in checks:
                check(info.context)
            return read(source, name)

        return read_attribute
    if resolver.parent_parameter is not None or resolver.root_parameter is not None:
        return None
    arguments: dict[str, tuple[str, Conversion]] = {}  # GraphQL name → Python name, conversion
    for argument in field.arguments:
        conversion = _conversion(argument.type, config, registry)
        if conversion is False or argument.python_name is None:
            return None
        arguments[config.name_converter.from_argument(argument)] = (
            argument.python_name,
            conversion,
        )
    function = cast(Callable[..., Any], resolver.wrapped_func)
    takes_self = resolver.self_parameter is not None
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    info_class: Callable[..., strawberry.Info] = config.info_class

    def call(source: Any, info: GraphQLResolveInfo, values: dict[str, Any]) -> Any:
        for check in checks:
            check(info.context)
        kwargs = {}
        for name, value in values.items():
            python_name, conversion = arguments[name]
            kwargs[python_name] = _converted(value, conversion)
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=info, _field=field)
        return function(source, **kwargs) if takes_self else function(**kwargs)

    if not field.is_async:
        return lambda source, info, **values: call(source, info, values)

    async def resolve(source: Any, info: GraphQLResolveInfo, **values: Any) -> Any:
        return await call(source, info, values)

    return resolve


def _conversion(
    type_: Any, config: StrawberryConfig, registry: Mapping[object, Any]
) -> Conversion | Literal[False]:
    """How an argument of ``type_`` converts; False when not by this module."""
    if isinstance(type_, StrawberryMaybe):  # Strawberry wraps its values
        return False
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if isinstance(item, StrawberryOptional):
            item = item.of_type
        return list if _passes_as_is(item, registry) else False
    if has_object_definition(type_):
        return _input_conversion(type_, config, registry)
    return None if _passes_as_is(type_, registry) else False


def _input_conversion(
    type_: type[WithStrawberryObjectDefinition],
    config: StrawberryConfig,
    registry: Mapping[object, Any],
) -> Conversion | Literal[False]:
    """An input object's conversion when each of its fields converts here and it has no
    ``from_input`` of its own: as Strawberry makes it, the fields left out
    take their defaults, or None when they have none."""
    definition = type_.__strawberry_definition__
    if not definition.is_input or definition.from_input is not None:
        return False
    fields: list[tuple[str, str, Conversion]] = []  # GraphQL name, Python name, conversion
    for field in definition.fields:
        conversion = _conversion(field.resolve_type(type_definition=definition), config, registry)
        if conversion is False:
            return False
        fields.append((config.name_converter.from_field(field), field.python_name, conversion))
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def convert(value: Mapping[str, Any]) -> Any:
        kwargs = dict(unset)
        for graphql_name, python_name, conversion in fields:
            if graphql_name in value:
                kwargs[python_name] = _converted(value[graphql_name], conversion)
        return type_(**kwargs)

    return convert


def _converted(value: Any, conversion: Conversion) -> Any:
    return value if conversion is None or value is None else conversion(value)


def _passes_as_is(type_: Any, registry: Mapping[object, Any]) -> bool:
    # A relay GlobalID is a scalar Strawberry builds from its text.
    return type_ is not GlobalID and is_scalar(type_, registry)
