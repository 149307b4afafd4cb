"""The executor of one GraphQL operation: without the reference cycle graphql-core's
has, and running each async field at once, up to its first wait.

graphql-core's executor hands every resolver ``info.async_helpers``, two of its own
bound methods, and keeps them in an attribute: executor → helpers → bound method →
executor. An executor that ends is then freed only by the cyclic garbage collector,
with everything it reached: the request's context, its loaders and every record they
read, the collected fields — a few hundred objects per request. Under load they pile
up in the oldest generation, and the full collection that frees them stalls every
request in flight, for up to tens of milliseconds.

Here the helpers reach the executor through a weak reference, so an executor is freed
as soon as its operation ends.

graphql-core awaits the async fields of an object together: one task each, gathered.
Yet most of them never wait: a customer's ``identifiers``, ``traits`` and
``interactions`` read what ``resolve`` already put in the request's loaders (see
:mod:`idgraph.api.lookahead`), futures that are done. So each async field is run as soon
as it is reached, as Python 3.12's eager tasks run theirs: one that finishes without
waiting gives its value right there, like a plain field (no task, no gather: ~5% of a
``resolve``'s CPU); one that waits is handed on from that point, to be awaited as
before. Its siblings still start in the same turn of the event loop, so their
DataLoader calls are still batched together.

Strawberry takes the class through ``Schema(execution_context_class=...)``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from types import CoroutineType
from typing import Any, TypeVar

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")


class Execution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, whose resolver helpers hold it weakly and which runs each
    async field at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_helpers(self)

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        result = super().execute_field(*args, **kwargs)
        return run_eagerly(result) if type(result) is CoroutineType else result


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


def run_eagerly(coroutine: Coroutine[Any, None, T]) -> T | Coroutine[Any, None, T]:
    """``coroutine``'s value if it finishes without waiting; else, once it first waits,
    a coroutine that goes on from there."""
    try:
        waiting = coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    if asyncio.isfuture(waiting):
        # Taken as a task takes what its coroutine awaits: asyncio's futures refuse a
        # second awaiter (another field loading the same key) while this flag is set.
        waiting._asyncio_future_blocking = False
    return _go_on(coroutine, waiting)


async def _go_on(coroutine: Coroutine[Any, None, T], waiting: Any) -> T:
    return await _Started(coroutine, waiting)


class _Started:
    """A coroutine stopped at its first wait, awaitable from there: the task that awaits
    this waits for what the coroutine waits for (``waiting``, the future it yielded),
    then resumes it; what the task is thrown (its cancellation) is thrown into it."""

    def __init__(self, coroutine: Coroutine[Any, None, Any], waiting: Any) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, None, Any]:
        coroutine, waiting = self.coroutine, self.waiting
        del self.waiting
        if asyncio.isfuture(waiting):
            # Handed on as awaited (the flag tells the task it was not a bare yield).
            waiting._asyncio_future_blocking = True
        while True:
            try:
                try:
                    yield waiting
                except BaseException as thrown:  # the task's cancellation, say
                    waiting = coroutine.throw(thrown)
                else:
                    waiting = coroutine.send(None)
            except StopIteration as finished:
                return finished.value
