"""Ingesting a JSON Lines file: one event per line, in batches, with per-line errors.

Each batch is applied atomically and records its event ids, so a run that is killed
midway can simply be started again: applied events come back as duplicates.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from idgraph.bulk import bulk_gc, produced_elsewhere
from idgraph.config import Settings
from idgraph.domain.events import EventParser, RawEvent
from idgraph.domain.model import Event, EventOutcome, Outcome, utcnow
from idgraph.service import BatchResult, IdentityGraph, check_events, event_parser

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

    def add(self, result: BatchResult, lines: Iterable[int]) -> None:
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
    stream: BinaryIO,
    max_line_bytes: int,
    decode: Callable[[bytes], object] = _decode,
    first_line: int = 1,
) -> Iterator[tuple[int, int, object | LineError]]:
    """Yield ``(line number, bytes read, parsed JSON or a LineError)``, numbering lines
    from ``first_line`` (where the stream starts in its file); blank lines are
    skipped; a line longer than ``max_line_bytes`` is refused without being parsed, and
    without being held whole: past the limit it is read in chunks and dropped.
    ``decode`` reads a line (``decode_event``: into a RawEvent where it can).

    Lines are strict UTF-8 (a byte-order mark is skipped): unlike ``json.loads`` on
    bytes, encoded surrogates are refused here, not decoded into unstorable text."""
    number = first_line - 1
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


class CheckedBatch(msgspec.Struct, array_like=True, tag=True):
    """The lines read for one batch, checked with one ``now``: ``numbers[i]`` is the
    line of ``events[i]``, an Event, or None where the event was refused (the refusals,
    in order, are ``refusals``); ``errors`` are the lines refused unchecked (not JSON,
    too long). ``lines`` and ``read`` count the lines read and their bytes (blank lines
    aside); ``blocked`` the identifiers dropped as blocked values."""

    now: datetime
    lines: int
    read: int
    numbers: list[int]
    events: list[Event | None]
    refusals: list[EventOutcome]
    errors: list[LineError]
    blocked: int

    def checked(self) -> list[Event | EventOutcome]:
        """Each event or its refusal, in line order."""
        refusals = iter(self.refusals)
        return [next(refusals) if e is None else e for e in self.events]


class FilePoint(NamedTuple):
    """Where a line starts in a file: its byte offset and its line number."""

    offset: int = 0
    line: int = 1


FILE_START = FilePoint()


def checked_batches(
    path: Path,
    settings: Settings,
    batch_size: int,
    parser: EventParser | None = None,
    start: FilePoint = FILE_START,
) -> Iterator[CheckedBatch]:
    """The file's lines from ``start`` on, read and checked in batches: lines 1 to
    ``batch_size``, then the next ``batch_size`` and so on (a batch holds the events of
    its lines; the last one may hold none). Runs in the second process of a bulk ingest
    (``parser`` None: one made from ``settings``), or in this one.

    Batches are cut by line number, not by event count, so that where a file's reading
    is split between processes (see ``_batches``) changes no batch."""
    with path.open("rb") as stream:
        stream.seek(start.offset)
        yield from checked_stream(stream, settings, batch_size, parser, start.line)


def checked_stream(
    stream: BinaryIO,
    settings: Settings,
    batch_size: int,
    parser: EventParser | None = None,
    first_line: int = 1,
) -> Iterator[CheckedBatch]:
    """:func:`checked_batches` of the lines ``stream`` holds, numbered from
    ``first_line``."""
    parser = parser or event_parser(settings)
    lines = read = 0
    raws: list[object] = []
    numbers: list[int] = []
    errors: list[LineError] = []

    def taken() -> CheckedBatch:
        """The lines read so far, checked; this generator then holds none of them, so
        the collection after the batch is applied need not walk its lines or events."""
        nonlocal lines, read, raws, numbers, errors
        now, blocked = utcnow(), parser.blocked_dropped
        events: list[Event | None] = []
        refusals: list[EventOutcome] = []
        for slot in check_events(parser, raws, now):
            if isinstance(slot, Event):
                events.append(slot)
            else:
                events.append(None)
                refusals.append(slot)
        blocked = parser.blocked_dropped - blocked
        batch = CheckedBatch(now, lines, read, numbers, events, refusals, errors, blocked)
        lines = read = 0
        raws, numbers, errors = [], [], []
        return batch

    batch = (first_line - 1) // batch_size
    for number, size, parsed in read_lines(
        stream, settings.max_line_bytes, decode_event, first_line
    ):
        if (line_batch := (number - 1) // batch_size) != batch:
            batch = line_batch
            if lines:
                yield taken()
        lines += 1
        read += size
        if isinstance(parsed, LineError):
            errors.append(parsed)
            continue
        raws.append(parsed)
        numbers.append(number)
    yield taken()


HEAD_BYTES = 16_777_216  # at most this much of a file is checked before the second process


@contextmanager
def _batches(graph: IdentityGraph, path: Path, batch_size: int) -> Iterator[Iterator[CheckedBatch]]:
    """The file's checked batches. If the file is large enough (``worker_min_bytes``)
    and another core may run it, a second process checks them while this one applies
    them. That process takes about half a second to start, so meanwhile this one
    checks the first batch itself, and applies it while the other checks the next one.
    (Only if the first batch's lines are over ``HEAD_BYTES``, this one checks and
    applies the lines those bytes hold, and the second process the rest of the batch.)"""
    settings = graph.settings
    if available_cores() < 2 or path.stat().st_size < settings.worker_min_bytes:
        yield checked_batches(path, settings, batch_size, graph.parser)
        return
    head, lines = _first_lines(path, batch_size)
    rest = FilePoint(len(head), lines + 1)
    parser = None  # the second process makes its own from the settings
    with produced_elsewhere(
        CheckedBatch, checked_batches, path, settings, batch_size, parser, rest
    ) as batches:
        first = checked_stream(io.BytesIO(head), settings, batch_size, graph.parser)
        yield itertools.chain(first, batches)


def _first_lines(path: Path, count: int) -> tuple[bytes, int]:
    """The first ``count`` whole lines of the file (fewer if its first ``HEAD_BYTES``
    hold fewer), and how many they are."""
    lines: list[bytes] = []
    size = 0
    with path.open("rb") as stream:
        while len(lines) < count and (line := stream.readline(HEAD_BYTES - size)).endswith(b"\n"):
            lines.append(line)
            size += len(line)
    return b"".join(lines), len(lines)


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


async def ingest_file(
    graph: IdentityGraph,
    path: Path,
    batch_size: int,
    on_progress: Callable[[int], object] = lambda n: None,
    on_errors: Callable[[list[LineError]], None] = lambda errors: None,
    on_batch: Callable[[BatchResult], object] = lambda result: None,
) -> IngestSummary:
    """Ingest a JSON Lines file in batches. After each batch, ``on_errors`` is called
    with its refused lines in line order, then ``on_progress`` with the bytes read."""
    summary = IngestSummary()
    started = time.perf_counter()
    with (
        bulk_gc() as collect,
        _batches(graph, path, batch_size) as batches,
        graph.store.bulk_writes(),
    ):
        for batch in batches:
            summary.lines += batch.lines
            summary.blocked_values += batch.blocked
            reported = len(summary.errors)
            for error in batch.errors:
                summary.reject(error)
            read = batch.read
            if batch.events:
                result = await graph.apply(batch.checked(), batch.now)
                summary.add(result, batch.numbers)
                on_batch(result)
                del result
            del batch  # its events are garbage now: the collection need not walk them
            collect()
            on_errors(sorted(summary.errors[reported:], key=lambda e: e.line))
            on_progress(read)
            # Let the event loop run: Ctrl-C (asyncio.run cancels its task) lands here,
            # between batches; the SQLite store's writes never wait for the loop.
            await asyncio.sleep(0)
    summary.errors.sort(key=lambda e: e.line)
    summary.seconds = time.perf_counter() - started
    return summary
