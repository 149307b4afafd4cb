"""Bulk ingest across two processes: while this process plans and writes one batch of a
file, a second one reads and checks the lines of the next ones.

Checking lines (decoding, validating, normalizing) needs no store state, so it can run
on another core; resolving and writing cannot, they follow the store's order. Checked
batches cross a pipe as MessagePack (msgspec: a few µs per event each way, against
some 30 µs to check one; pickling the same objects cost more than checking them).

The second process is a fresh interpreter (``python -m idgraph.bulk``), not a fork of
one that runs an event loop and holds an open store, nor a multiprocessing child that
imports the caller's main module again. It runs in a session of its own, so Ctrl-C
interrupts only this process, which ends it. It runs at most ``AHEAD`` batches ahead;
if it stops (killed, out of memory), the batches received are applied and the run stops
with :class:`~idgraph.errors.WorkerFailed`, no batch half written; if this process
stops, the second one finds its output closed and exits.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from subprocess import Popen
from typing import Any, BinaryIO, TypeVar

import msgspec

from idgraph.errors import WorkerFailed
from idgraph.files import write_all


class _Failure(msgspec.Struct, array_like=True, tag=True):
    message: str


@contextmanager
def bulk_gc() -> Iterator[Callable[[], object]]:
    """The garbage-collector policy for bulk ingest; yields what to call after a batch.

    Ingest allocates millions of short-lived objects and frees nearly all of them by
    reference counting; automatic collections would still run thousands of times, some
    over the whole (large, long-lived) heap. So the heap that exists before the run is
    frozen, automatic collection is off, and after each batch only the young
    generations (what the last batches allocated and left alive) are collected: a
    reference cycle that is garbage by the end of its batch is freed right then, so
    memory stays bounded by the batch size. A full collection runs again after the
    run, under the usual thresholds."""
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


T = TypeVar("T", bound=msgspec.Struct)
AHEAD = 2  # items received but not yet taken: the second process runs this far ahead
_HEADER = struct.Struct("<Q")  # each item's length, before it


@contextmanager
def produced_elsewhere(
    kind: type[T], produce: Callable[..., Iterator[T]], *args: Any
) -> Iterator[Iterator[T]]:
    """What ``produce(*args)`` yields, produced in a second process. ``kind`` is a
    tagged, array-like Struct; ``produce`` and ``args`` are pickled (``produce`` must
    be a module-level function)."""
    # It imports from where this process does (idgraph itself, and ``produce``'s module),
    # even what is not installed.
    path = os.pathsep.join(entry for entry in sys.path if entry)
    process = subprocess.Popen(
        [sys.executable, "-m", "idgraph.bulk"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,  # Ctrl-C interrupts this process, which ends that one
    )
    assert process.stdin is not None  # both are pipes
    assert process.stdout is not None
    items: queue.Queue[bytes | None] = queue.Queue(AHEAD)
    receiver = threading.Thread(target=_receive, args=(process.stdout, items), daemon=True)
    receiver.start()
    try:
        with contextlib.suppress(BrokenPipeError), process.stdin:  # it stopped: see below
            pickle.dump((produce, args), process.stdin)
        yield _taken(kind, items, process)
    finally:
        process.kill()
        while receiver.is_alive():  # let it see the end
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.01)
        process.wait()
        process.stdout.close()


def _receive(stream: BinaryIO, items: queue.Queue[bytes | None]) -> None:
    """Put each item that arrives whole, then None. (Reading releases the GIL.)"""
    try:
        while len(header := stream.read(_HEADER.size)) == _HEADER.size:
            (size,) = _HEADER.unpack(header)
            item = stream.read(size)
            if len(item) < size:
                break
            items.put(item)
    finally:
        items.put(None)


def _taken(kind: type[T], items: queue.Queue[bytes | None], process: Popen[bytes]) -> Iterator[T]:
    decode = msgspec.msgpack.Decoder(kind | _Failure).decode
    while (item := items.get()) is not None:
        # Yielded without a name for it here: while the caller applies the item, this
        # frame holds only its bytes, and the collection after the item need not walk it.
        yield _unless_failure(_decoded(decode, item))
    code = process.wait()
    if code != 0:
        raise WorkerFailed(
            f"the process checking lines stopped ({_exit(code)}); "
            "applied batches are kept, run again to continue"
        )


def _decoded(decode: Callable[[bytes], T | _Failure], item: bytes) -> T | _Failure:
    try:
        return decode(item)
    except msgspec.MsgspecError as exc:
        raise WorkerFailed(
            f"the process checking lines sent a batch that cannot be read ({exc}); "
            "applied batches are kept, run again to continue"
        ) from None


def _unless_failure(message: T | _Failure) -> T:
    if isinstance(message, _Failure):
        raise WorkerFailed(f"the process checking lines failed: {message.message}")
    return message


def _exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _produce() -> None:
    """The second process: read what to run from stdin, write each item it yields to
    stdout, then exit; exit when stdout is closed (the first process has gone)."""
    produce, args = pickle.load(sys.stdin.buffer)
    out = sys.stdout.fileno()
    encode = msgspec.msgpack.Encoder().encode

    def send(item: msgspec.Struct) -> None:
        data = encode(item)
        write_all(out, _HEADER.pack(len(data)))
        write_all(out, data)

    try:
        with bulk_gc() as collect:
            for item in produce(*args):
                send(item)
                del item
                collect()
    except BrokenPipeError:
        os._exit(1)  # no flush of what cannot be written
    except Exception as exc:
        send(_Failure(f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


if __name__ == "__main__":
    _produce()
