"""What idgraph does around each phase of a GraphQL operation, as one Strawberry
extension.

For every request, Strawberry looks up each hook of each extension, wraps it in a context
manager and enters it, phase by phase. With one extension per concern (there were five),
that bookkeeping was some 5% of a ``resolve``'s CPU. So there is one extension, and its
hooks call each concern in turn: documents here (:class:`Documents`), limits in
:mod:`idgraph.api.limits`, error codes in :mod:`idgraph.api.errors`, the audit trail in
:mod:`idgraph.api.audit`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
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


class RequestPhases(SchemaExtension):
    """Parses from the cache of documents, then checks the operation against the limits
    and its variables' text; validates from the cache; gives a query its wall-clock
    timeout; codes the errors of validation and of the request; hands the audit trail
    over at the end (a mutation waits for its commit)."""

    def __init__(self, limits: Limits, documents: Documents) -> None:
        self.limits = limits
        self.documents = documents
        self.prepared: Prepared | None = None

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context
        await context.context.audit.flush(wait=context.operation_type is OperationType.MUTATION)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:  # Strawberry refuses a request without one
            self.prepared = self.documents.prepare(context.query)
            context.graphql_document = self.prepared.document
        yield
        if context.graphql_document is not None:
            self.limits.check(context)
            operation = get_operation_ast(context.graphql_document, context.operation_name)
            if operation is not None:
                check_variable_text(context, operation)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.prepared is not None:
            context.pre_execution_errors = self.prepared.validate(
                context.schema._schema, context.validation_rules
            )
        yield
        tag_validation_errors(context.pre_execution_errors)

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.operation_type is OperationType.QUERY:
            deadline = asyncio.timeout(self.limits.settings.timeout)
            try:
                async with deadline:
                    yield
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise self.limits.over_time() from None
        else:
            yield
        tag_request_errors(context.result)
