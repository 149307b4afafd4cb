"""The executor of one GraphQL operation, without the reference cycle graphql-core's has.

graphql-core's executor hands every resolver ``info.async_helpers``, two of its own
bound methods, and keeps them in an attribute: executor → helpers → bound method →
executor. An executor that ends is then freed only by the cyclic garbage collector,
with everything it reached: the request's context, its loaders and every record they
read, the collected fields — a few hundred objects per request. Under load they pile
up in the oldest generation, and the full collection that frees them stalls every
request in flight, for up to tens of milliseconds.

Here the helpers reach the executor through a weak reference, so an executor is freed
as soon as its operation ends. Strawberry takes the class through
``Schema(execution_context_class=...)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class Execution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose resolver helpers hold it weakly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_helpers(self)


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
