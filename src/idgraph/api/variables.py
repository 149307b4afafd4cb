"""Text in GraphQL variables that no store and no response could carry.

A JSON body may hold lone surrogates (an escape such as ``"\\ud800"`` with no partner):
valid JSON syntax, but text that UTF-8 cannot encode. GraphQL string literals cannot
hold them (the parser refuses them), so only variables can. Inside an ``EventInput`` the
event parser refuses them per event, with the field and the reason, so the valid events
of a batch are still applied; inside an ``IdentifierInput`` the normalizer refuses them
like any invalid identifier; in any other variable they are refused here, before
anything runs, with ``BAD_USER_INPUT`` naming the variable and where in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, get_named_type
from graphql.utilities import type_from_ast
from strawberry.types import ExecutionContext

from idgraph.domain.text import shown, unicode_problem

# Inputs checked where they are used, with a reason naming the field: events by the
# event parser (per event), identifiers by the normalizer (a user error of the field).
CHECKED_WHERE_USED = frozenset({"EventInput", "IdentifierInput"})


def check_variable_text(context: ExecutionContext, operation: OperationDefinitionNode) -> None:
    variables: Mapping[str, Any] = context.variables or {}
    schema = context.schema._schema
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in variables:
            continue
        declared = type_from_ast(schema, definition.type)
        if declared is not None and get_named_type(declared).name in CHECKED_WHERE_USED:
            continue
        problem = _first_problem(variables[name], f"${name}")
        if problem is not None:
            raise GraphQLError(
                f"variable {problem[0]}: {problem[1]}", extensions={"code": "BAD_USER_INPUT"}
            )


def _first_problem(value: object, path: str) -> tuple[str, str] | None:
    """The first string under ``value`` that holds a lone surrogate, without recursion
    (the body's nesting is bounded, but not by Python's stack)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = unicode_problem(item)
            if problem is not None:
                return where, problem
        elif isinstance(item, Mapping):
            for key, child in item.items():
                stack.append((key, f"{where} (a key)"))
                stack.append((child, f"{where}.{shown(key)}"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None
