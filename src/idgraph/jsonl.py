"""Ingesting a JSON Lines file: one event per line, in batches, with per-line errors.

Each batch is applied atomically and records its event ids, so a run that is killed
midway can simply be started again: applied events come back as duplicates.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import msgspec

from idgraph.domain.events import RawEvent
from idgraph.domain.model import Outcome
from idgraph.service import BatchResult, IdentityGraph

SKIP_CHUNK = 65_536  # read size of the rest of an over-long line


@dataclass
class LineError:
    line: int
    message: str


@dataclass
class IngestSummary:
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    merges: int = 0
    new_customers: int = 0
    new_nodes: int = 0
    rejected_links: int = 0
    blocked_values: int = 0
    seconds: float = 0.0
    errors: list[LineError] = field(default_factory=list)

    def add(self, result: BatchResult, lines: list[int]) -> None:
        self.merges += result.merges
        self.new_customers += result.new_customers
        self.new_nodes += result.new_nodes
        self.rejected_links += result.rejected_links
        for line, outcome in zip(lines, result.outcomes, strict=True):
            if outcome.outcome is Outcome.ACCEPTED:
                self.accepted += 1
            elif outcome.outcome is Outcome.DUPLICATE:
                self.duplicates += 1
            else:
                self.reject(LineError(line, outcome.reason or "rejected"))

    def reject(self, error: LineError) -> None:
        self.rejected += 1
        self.errors.append(error)

    def text(self) -> str:
        rate = (self.accepted + self.duplicates) / self.seconds if self.seconds else 0.0
        return (
            f"{self.lines} lines: {self.accepted} accepted, {self.duplicates} duplicate, "
            f"{self.rejected} rejected; {self.new_nodes} new identity nodes, "
            f"{self.new_customers} new customers, {self.merges} merges, "
            f"{self.rejected_links} links refused by rules, {self.blocked_values} blocked "
            f"values dropped; {self.seconds:.1f} s ({rate:,.0f} events/s)"
        )


class _NotJSON(ValueError):
    pass


def _refuse_constant(name: str) -> object:
    raise _NotJSON(f"{name} is not a JSON number")


# Strict JSON: ``NaN`` and ``Infinity`` are refused like any other invalid token.
_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_fast = msgspec.json.Decoder()


def _decode(raw: bytes) -> object:
    """One line's JSON value. msgspec reads strict UTF-8 JSON to the same values as
    ``_decoder`` (exact integers, no NaN, the last of duplicate keys) and refuses
    everything else — a byte-order mark, invalid UTF-8, a lone surrogate escape, a
    number out of range, 1,000 levels of nesting; a refused line is read again by
    ``_decoder``, which accepts what it may (a BOM, ``"\\ud800"`` for the event checks
    to refuse) and words the error the user sees. (Python's limit on nesting depends on
    the call stack, so a line nested a little under 1,000 levels may now be refused by
    the event checks, nested deeper than 16, instead of as JSON nested too deeply.)"""
    try:
        return _fast.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return _decoder.decode(raw.decode("utf-8").removeprefix("\ufeff"))


_event = msgspec.json.Decoder(RawEvent)


def decode_event(raw: bytes) -> object:
    """One line as a :class:`RawEvent` when it has the common shape of an event (the
    event checks then take a shorter path), else as ``_decode`` reads it."""
    try:
        return _event.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # ValidationError included
        return _decode(raw)


def read_lines(
    stream: BinaryIO, max_line_bytes: int, decode: Callable[[bytes], object] = _decode
) -> Iterator[tuple[int, int, object | LineError]]:
    """Yield ``(line number, bytes read, parsed JSON or a LineError)``; blank lines are
    skipped; a line longer than ``max_line_bytes`` is refused without being parsed, and
    without being held whole: past the limit it is read in chunks and dropped.
    ``decode`` reads a line (``decode_event``: into a RawEvent where it can).

    Lines are strict UTF-8 (a byte-order mark is skipped): unlike ``json.loads`` on
    bytes, encoded surrogates are refused here, not decoded into unstorable text."""
    number = 0
    while raw := stream.readline(max_line_bytes + 1):
        number += 1
        size = len(raw)
        if size > max_line_bytes:
            while not raw.endswith(b"\n") and (raw := stream.readline(SKIP_CHUNK)):
                size += len(raw)
            limit = f"over the {max_line_bytes:,}-byte limit (max_line_bytes)"
            yield number, size, LineError(number, f"line is {size:,} bytes, {limit}")
            continue
        if not raw.strip():
            continue
        try:
            parsed = decode(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, _NotJSON) as exc:
            parsed = LineError(number, f"invalid JSON: {exc}")
        except ValueError:  # Python's limit on converting digits to int
            parsed = LineError(number, "invalid JSON: an integer with over 4,300 digits")
        except RecursionError:
            parsed = LineError(number, "invalid JSON: nested too deeply")
        yield number, size, parsed


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


async def ingest_file(
    graph: IdentityGraph,
    path: Path,
    batch_size: int,
    on_progress: Callable[[int], object] = lambda n: None,
    on_error: Callable[[LineError], None] = lambda e: None,
    on_batch: Callable[[BatchResult], object] = lambda result: None,
) -> IngestSummary:
    summary = IngestSummary()
    started = time.perf_counter()
    blocked_before = graph.parser.blocked_dropped
    batch: list[object] = []
    lines: list[int] = []
    read = reported = 0

    async def flush() -> None:
        nonlocal read, reported
        if batch:
            result = await graph.ingest(batch)
            summary.add(result, lines)
            on_batch(result)
            batch.clear()
            lines.clear()
            collect()
        for error in sorted(summary.errors[reported:], key=lambda e: e.line):
            on_error(error)
        reported = len(summary.errors)
        on_progress(read)
        read = 0

    with path.open("rb") as stream, bulk_gc() as collect:
        for number, size, parsed in read_lines(stream, graph.settings.max_line_bytes, decode_event):
            summary.lines += 1
            read += size
            if isinstance(parsed, LineError):
                summary.reject(parsed)
                continue
            batch.append(parsed)
            lines.append(number)
            if len(batch) >= batch_size:
                await flush()
        await flush()
    summary.errors.sort(key=lambda e: e.line)
    summary.blocked_values = graph.parser.blocked_dropped - blocked_before
    summary.seconds = time.perf_counter() - started
    return summary
