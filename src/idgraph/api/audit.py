"""The audit trail: every read or change of personal data, collected while a request
runs and written when it ends, before its response leaves.

Requests do not write their trails one by one: the application's :class:`AuditWriter`
puts the trails of all requests waiting at one moment in one ``append_audit`` call (a
group commit), so under load many requests share one write transaction."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from strawberry.extensions import SchemaExtension

from idgraph.domain.access import AuditEntry, Operation
from idgraph.domain.model import utcnow
from idgraph.store.port import Store

MAX_BATCH = 1_000


class AuditWriter:
    """Writes audit entries in group commits, for the whole application.

    :meth:`write` returns once the transaction holding the entries has committed, so a
    response never leaves before its audit trail is in the store: no read is ever
    unaudited. A crash loses only the trails of requests still in flight, and those
    answered nothing. While one write runs, the trails handed over meanwhile wait and
    then go together in the next (at most ``max_batch`` entries per write): at low load
    a request waits for its own write, as if it wrote it itself; at high load one
    transaction, one commit and one WAL append serve many requests.

    The queue is bounded by the requests in flight, as each waits for its entries. The
    application's lifespan starts the writer and closes it, which writes what is left.
    """

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: deque[tuple[Sequence[AuditEntry], asyncio.Future[None]]] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="idgraph-audit-writer")

    async def close(self) -> None:
        """Write every pending entry, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def write(self, entries: Sequence[AuditEntry]) -> None:
        """Return once ``entries`` are committed; raise what the store raised if not.
        Before :meth:`start` or after :meth:`close`, the entries are written at once."""
        if self._task is None or self._task.done():
            await self.store.append_audit(entries)
            return
        committed = asyncio.get_running_loop().create_future()
        self._pending.append((entries, committed))
        self._wakeup.set()
        await committed

    async def _run(self) -> None:
        while self._pending or not self._closing:
            if not self._pending:
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            await self._write_batch()

    async def _write_batch(self) -> None:
        batch: list[AuditEntry] = []
        waiting: list[asyncio.Future[None]] = []
        while self._pending and (
            not batch or len(batch) + len(self._pending[0][0]) <= self.max_batch
        ):
            entries, committed = self._pending.popleft()
            batch.extend(entries)
            waiting.append(committed)
        try:
            await self.store.append_audit(batch)
        except Exception as exc:  # each waiting request fails as if it had written
            for committed in waiting:
                if not committed.done():  # its request may have been cancelled
                    committed.set_exception(exc)
        else:
            for committed in waiting:
                if not committed.done():
                    committed.set_result(None)


@dataclass
class AuditTrail:
    """The entries of one request: who (the key's name), under which purpose."""

    actor: str
    purpose: str
    writer: AuditWriter
    entries: list[AuditEntry] = field(default_factory=list)

    def record(
        self, operation: Operation, customer_ids: Iterable[str | None], detail: str = ""
    ) -> None:
        now = utcnow()
        for customer_id in dict.fromkeys(customer_ids):
            self.entries.append(
                AuditEntry(now, self.actor, self.purpose, operation, customer_id, detail)
            )

    async def flush(self) -> None:
        if self.entries:
            entries, self.entries = self.entries, []
            await self.writer.write(entries)


class FlushAudit(SchemaExtension):
    """Writes the request's audit trail once the operation has run."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        await self.execution_context.context.audit.flush()
