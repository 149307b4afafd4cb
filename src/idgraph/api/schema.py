"""The GraphQL schema, with its limits and caches. ``python -m idgraph.api.schema`` prints
it in SDL; ``schema.graphql`` at the repository root is that output (a test checks it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from idgraph.api.direct import use_direct_resolvers
from idgraph.api.execution import Execution
from idgraph.api.limits import Limits
from idgraph.api.mutations import Mutation
from idgraph.api.phases import Documents, RequestPhases
from idgraph.api.queries import Query
from idgraph.api.scalars import DateTime
from idgraph.api.segments import CUSTOMER_FILTER, CustomerFilter
from idgraph.api.types import Account, Customer, Device, Identifier, Interaction
from idgraph.config import ApiSettings
from idgraph.domain.rules import DEFAULT_MAX_SIZE

CACHE_SIZE = 512


class IdgraphSchema(strawberry.Schema):
    def __init__(self, *, limits: Limits, documents: Documents, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limits = limits
        self.documents = documents

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> RequestPhases:
        return RequestPhases(execution_context, extensions, self.limits, self.documents)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry would log every error with its message, which may quote personal
        data; :func:`idgraph.api.errors.format_error` logs the unexpected ones instead."""


def build_schema(settings: ApiSettings, max_size: int = DEFAULT_MAX_SIZE) -> strawberry.Schema:
    """The schema, enforcing ``settings``' limits (see :mod:`idgraph.api.limits`);
    ``max_size`` is the customer size cap, which bounds a customer's identity nodes."""
    limits = Limits(settings, max_size)
    documents = Documents(CACHE_SIZE, settings.max_tokens)
    schema = IdgraphSchema(
        limits=limits,
        documents=documents,
        query=Query,
        mutation=Mutation,
        types=[Customer, Identifier, Device, Account, Interaction],
        scalar_overrides={datetime: DateTime, CustomerFilter: CUSTOMER_FILTER},
        execution_context_class=Execution,
    )
    use_direct_resolvers(schema)
    limits.sizes.learn(schema._schema)
    return schema


def sdl() -> str:
    """The schema in SDL, as ``schema.graphql`` holds it."""
    return build_schema(ApiSettings()).as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
