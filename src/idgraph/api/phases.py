"""What idgraph does around each phase of a GraphQL operation, as Strawberry's runner of
extensions.

For every request, Strawberry's runner looks up each hook of each extension, wraps it in
a context manager and enters it, phase by phase. With one extension per concern (there
were five), that bookkeeping was some 5% of a ``resolve``'s CPU, and ~4% with one. So
idgraph's schema runs no extension: its runner's phases call each concern in turn:
documents here (:class:`Documents`), limits in :mod:`idgraph.api.limits`, error codes in
:mod:`idgraph.api.errors`, the audit trail in :mod:`idgraph.api.audit`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from idgraph.api.errors import tag_request_errors, tag_validation_errors
from idgraph.api.limits import Limits
from idgraph.api.variables import check_variable_text


@dataclass(slots=True)
class Prepared:
    """A parsed document and, once validated, its validation errors."""

    document: DocumentNode
    rules: tuple[type[ASTValidationRule], ...] | None = None
    errors: list[GraphQLError] | None = None

    def validate(
        self, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        if self.errors is None or self.rules != rules:
            self.errors = validate_document(schema, self.document, rules)
            self.rules = rules
        return self.errors


class Documents:
    """The ``size`` most recently used documents, parsed and validated, by query text.

    A repeated query is neither parsed nor validated again. Keying on the text also
    spares hashing the document's whole syntax tree on each lookup, which a cache of
    validations keyed on the document does."""

    def __init__(self, size: int, max_tokens: int) -> None:
        self.size = size
        self.max_tokens = max_tokens
        self._prepared: OrderedDict[str, Prepared] = OrderedDict()

    def prepare(self, query: str) -> Prepared:
        """The document of ``query``; a syntax error (or too many tokens) raises."""
        prepared = self._prepared.get(query)
        if prepared is None:
            prepared = Prepared(parse(query, max_tokens=self.max_tokens))
            self._prepared[query] = prepared
            if len(self._prepared) > self.size:
                self._prepared.popitem(last=False)
        else:
            self._prepared.move_to_end(query)
        return prepared


# Strawberry's execute_sync would enter the phases without ``async with``.
ASYNC_ONLY = "idgraph's GraphQL operations run asynchronously (Schema.execute)"


class RequestPhases(SchemaExtensionsRunner):
    """Strawberry's runner of extensions for one operation, doing idgraph's work around
    each phase: parses from the cache of documents, then checks the operation against
    the limits and its variables' text; validates from the cache; gives a query its
    wall-clock timeout; codes the errors of validation and of the request; hands the
    audit trail over at the end (a mutation waits for its commit). Made for each
    operation by ``IdgraphSchema.create_extensions_runner``."""

    def __init__(
        self,
        execution_context: ExecutionContext,
        extensions: list[SchemaExtension],
        limits: Limits,
        documents: Documents,
    ) -> None:
        if extensions:
            raise TypeError("idgraph's schema runs no Strawberry extension: see RequestPhases")
        super().__init__(execution_context, extensions)
        self.limits = limits
        self.documents = documents
        self.prepared: Prepared | None = None

    def operation(self) -> OperationContextManager:
        return _Operation(self)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self)

    def validation(self) -> ValidationContextManager:
        return _Validation(self)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self)


class _Phase(ExtensionContextManagerBase):
    """One of :class:`RequestPhases`' phases: Strawberry's context manager for it, doing
    idgraph's work instead of extensions' hooks; entered with ``async with`` only."""

    def __init__(self, phases: RequestPhases) -> None:
        super().__init__([])
        self.phases = phases

    def __enter__(self) -> None:
        raise RuntimeError(ASYNC_ONLY)


class _WaitsForNothing(_Phase):
    """A phase whose work waits for nothing: ``async with`` runs it as ``with`` does."""

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        self.__exit__(exc_type, exc, traceback)


class _Operation(_Phase, OperationContextManager):
    async def __aenter__(self) -> None:
        pass

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            context = self.phases.execution_context
            mutation = context.operation_type is OperationType.MUTATION
            await context.context.audit.flush(wait=mutation)


class _Parsing(_WaitsForNothing, ParsingContextManager):
    def __enter__(self) -> None:
        phases = self.phases
        context = phases.execution_context
        if context.query:  # Strawberry refuses a request without one
            phases.prepared = phases.documents.prepare(context.query)
            context.graphql_document = phases.prepared.document

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        context = self.phases.execution_context
        if exc_type is None and context.graphql_document is not None:
            self.phases.limits.check(context)
            operation = get_operation_ast(context.graphql_document, context.operation_name)
            if operation is not None:
                check_variable_text(context, operation)


class _Validation(_WaitsForNothing, ValidationContextManager):
    def __enter__(self) -> None:
        context = self.phases.execution_context
        if self.phases.prepared is not None:
            context.pre_execution_errors = self.phases.prepared.validate(
                context.schema._schema, context.validation_rules
            )

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            tag_validation_errors(self.phases.execution_context.pre_execution_errors)


class _Executing(_Phase, ExecutingContextManager):
    async def __aenter__(self) -> None:
        query = self.phases.execution_context.operation_type is OperationType.QUERY
        self.deadline = asyncio.timeout(self.phases.limits.settings.timeout) if query else None
        if self.deadline is not None:
            await self.deadline.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self.deadline is not None:
            try:
                await self.deadline.__aexit__(exc_type, exc, traceback)
            except TimeoutError:
                if not self.deadline.expired():
                    raise
                raise self.phases.limits.over_time() from None
        if exc_type is None:
            tag_request_errors(self.phases.execution_context.result)
