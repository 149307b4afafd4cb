"""The audit trail: every read or change of personal data, collected while a request
runs and handed to the application's :class:`AuditWriter` when it ends.

The writer commits the trails of many requests together, off their path: a query
answers without waiting for a write transaction, and the store sees one write per
``[api] audit_linger`` at most instead of one per request (on SQLite, each commit by the
audit's connection also empties the read connection's page cache)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from idgraph.domain.access import AuditEntry, Operation
from idgraph.domain.model import utcnow
from idgraph.store.port import Store

MAX_BATCH = 1_000  # entries per store write
MAX_BACKLOG = 10_000  # entries waiting before requests wait for their write
RETRY_SECONDS = 0.5  # pause after a failed write

logger = logging.getLogger(__name__)


class AuditWriter:
    """Writes audit entries for the whole application, in group commits.

    Nothing handed over is dropped: a write that fails keeps its entries, in order, for
    the next one; :meth:`close` (the application's shutdown) writes what is pending; and
    :meth:`flush` lets a reader of the audit log in this process see every entry handed
    over before. A crash loses at most the entries of the last ``linger`` seconds; with
    ``linger`` 0 every write waits for its commit, so none is lost.

    What may wait is bounded: once ``max_backlog`` entries are pending (the store is slow
    or failing), :meth:`write` waits for their commit and raises what the store raised,
    so reads do not run ahead of their audit. Changes pass ``wait=True``: a change is
    applied and audited whole before its response leaves.
    """

    def __init__(
        self,
        store: Store,
        *,
        linger: float,
        max_batch: int = MAX_BATCH,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.linger = linger
        self.max_backlog = max_backlog
        self._pending: list[AuditEntry] = []
        self._waiting: list[asyncio.Future[None]] = []  # callers waiting for a commit
        self._wakeup = asyncio.Event()  # entries were handed over
        self._urgent = asyncio.Event()  # someone waits: write without lingering
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="idgraph-audit-writer")

    async def close(self) -> None:
        """Write every pending entry, then stop; raise what the store raised if it
        could not write them."""
        self._closing = True
        self._wakeup.set()
        self._urgent.set()
        if self._task is not None:
            await self._task

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def write(self, entries: Sequence[AuditEntry], *, wait: bool = False) -> None:
        """Hand ``entries`` over; with ``wait`` (or a full backlog) return once they
        are committed, raising what the store raised if they are not. Before
        :meth:`start` or after :meth:`close`, the entries are written at once."""
        if not self._running:
            await self.store.append_audit(entries)
            return
        self._pending.extend(entries)
        self._wakeup.set()
        if wait or not self.linger or len(self._pending) >= self.max_backlog:
            await self._committed()

    async def flush(self) -> None:
        """Return once every entry handed over so far is committed."""
        if self._running and self._pending:
            await self._committed()

    def _committed(self) -> asyncio.Future[None]:
        committed = asyncio.get_running_loop().create_future()
        self._waiting.append(committed)
        self._urgent.set()
        return committed

    async def _run(self) -> None:
        while True:
            if not self._pending:
                # Whoever waits now came while what it waits for was being written:
                # that write is committed, nothing is left to wait for.
                waiting, self._waiting = self._waiting, []
                _wake(waiting, None)
                self._urgent.clear()
                if self._closing:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            if not (self._urgent.is_set() or self._closing):  # let more requests hand theirs over
                try:
                    async with asyncio.timeout(self.linger):
                        await self._urgent.wait()
                except TimeoutError:
                    pass
            if not await self._write_pending():
                await asyncio.sleep(RETRY_SECONDS)

    async def _write_pending(self) -> bool:
        """Write what is pending now, in writes of ``max_batch``; then wake those who
        waited for it. What is handed over meanwhile waits for the next round, lingering
        again unless someone waits for it: under steady load, writing it at once would
        give nearly every request a write of its own (and, on SQLite, every read after
        it a cold page cache). A failed write keeps what it did not commit and fails
        those waiting (while closing, it raises); True if all went."""
        self._urgent.clear()
        waiting, self._waiting = self._waiting, []
        count = len(self._pending)
        try:
            while count:
                batch = self._pending[: min(count, self.max_batch)]
                await self.store.append_audit(batch)
                del self._pending[: len(batch)]
                count -= len(batch)
        except Exception as exc:
            logger.error(
                "audit write failed (%s); %d entries kept", type(exc).__name__, len(self._pending)
            )
            _wake(waiting, exc)
            if self._closing:
                raise
            return False
        _wake(waiting, None)
        return True


def _wake(waiting: list[asyncio.Future[None]], error: Exception | None) -> None:
    for committed in waiting:
        if committed.done():  # its request was cancelled
            continue
        if error is None:
            committed.set_result(None)
        else:
            committed.set_exception(error)


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

    async def flush(self, *, wait: bool = False) -> None:
        if self.entries:
            entries, self.entries = self.entries, []
            await self.writer.write(entries, wait=wait)
