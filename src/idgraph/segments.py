"""Segments as the API and the CLI use them: filters parsed against the configured
purposes, saved segments by name, and the query a caller's purpose may run.

The filter language and its meaning are :mod:`idgraph.domain.segment`'s; the stores
evaluate it (:meth:`idgraph.store.port.Store.segment_page`)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from idgraph.config import Settings
from idgraph.domain import rfc3339
from idgraph.domain.consent import Purpose, evaluate
from idgraph.domain.model import utcnow
from idgraph.domain.segment import All, Filter, SavedSegment, parse_filter
from idgraph.domain.text import text_problem
from idgraph.errors import InvalidInput, NotFound
from idgraph.store.port import SegmentQuery, SegmentSort, Store

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
NAME_RULE = "is 1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit"
MAX_DESCRIPTION = 1_000
MAX_SAVED = 200  # saved segments in a store: listing them counts each one's members


class Segments:
    """The segments of one store under one configuration."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def parse(self, raw: object, root: str = "filter") -> Filter:
        """The filter ``raw`` (decoded JSON) describes; FilterError naming where not."""
        purposes = [p.name for p in self.settings.purposes]
        return parse_filter(raw, purposes, root, sealed_traits=self.settings.encrypted)

    async def selection(self, raw: object | None, name: str | None) -> Filter:
        """The filter of a request: ``raw``, the saved segment ``name``, or both (a customer
        must then match both). InvalidInput when neither is given; NotFound for an
        unknown segment."""
        parts: list[Filter] = []
        if name is not None:
            parts.append(self.parse((await self.get(name)).filter, "segment"))
        if raw is not None:
            parts.append(self.parse(raw))
        if not parts:
            raise InvalidInput("give a filter or the name of a saved segment")
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def query(
        self, filter: Filter, purpose: Purpose | None, now: datetime | None = None
    ) -> SegmentQuery:
        """The query of ``filter`` as ``purpose`` may run it (only customers it may see at
        all); with no purpose (an operator at the command line), every customer."""
        return SegmentQuery(filter, self.settings.purposes, now or utcnow(), purpose)

    async def get(self, name: str) -> SavedSegment:
        segment = await self.store.segment(check_name(name))
        if segment is None:
            raise NotFound(f"no saved segment {name!r}")
        return segment

    async def save(self, name: str, raw: object, description: str = "") -> SavedSegment:
        """Save (or replace) a segment; its filter is checked first."""
        check_name(name)
        self.parse(raw)
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"description: at most {MAX_DESCRIPTION} characters")
        if (problem := text_problem(description, free=True)) is not None:
            raise InvalidInput(f"description: {problem}")
        saved = await self.store.segments()
        if len(saved) >= MAX_SAVED and all(s.name != name for s in saved):
            raise InvalidInput(f"at most {MAX_SAVED} saved segments: delete one first")
        segment = SavedSegment(name, raw, description, utcnow())
        await self.store.put_segment(segment)
        return segment

    async def delete(self, name: str) -> None:
        await self.store.delete_segment(check_name(name))

    async def list(self) -> list[SavedSegment]:
        return await self.store.segments()


class BadName(InvalidInput):
    """A segment name breaks :data:`NAME_RULE`."""


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadName(f"segment name {NAME_RULE}")
    return name


def fingerprint(raw: object | None, name: str | None, sort: SegmentSort) -> str:
    """A short digest naming one listing (filter, segment, sort): cursors are bound to
    it, so a cursor of another listing is refused. It is never shown to anyone."""
    text = json.dumps([raw, name, sort.value], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def segment_json(segment: SavedSegment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "description": segment.description,
        "filter": segment.filter,
        "created_at": segment.created_at.isoformat(),
    }


# ---- exports -------------------------------------------------------------------------

FORMATS = ("csv", "jsonl")
Progress = Callable[[int], object]
Audit = Callable[[list[str]], Awaitable[None]]


async def export(
    store: Store,
    query: SegmentQuery,
    out: TextIO,
    *,
    format: str,
    traits: Sequence[str] = (),
    progress: Progress = lambda n: None,
    audit: Audit,
) -> int:
    """Write every member of ``query``'s segment to ``out``, one row (CSV) or line
    (JSON Lines) per customer: ``customer_id``, ``size``, ``created_at``, then the merged
    value of each trait in ``traits``. With a purpose, traits follow the customer-level
    decision, as ``resolve`` shows them (hidden: empty). ``audit`` gets each batch's
    customer ids before the batch is written. Returns how many customers were written."""
    csv_out = csv.writer(out, lineterminator="\n") if format == "csv" else None
    if csv_out is not None:
        csv_out.writerow(["customer_id", "size", "created_at", *traits])
    written = 0
    async for batch in store.iter_segment(query):
        ids = [c.id for c in batch]
        await audit(ids)
        values = await _trait_values(store, query, ids, traits)
        for customer in batch:
            shown = values.get(customer.id, {})
            if csv_out is not None:
                cells = [_cell(shown[name]) if name in shown else "" for name in traits]
                csv_out.writerow([customer.id, customer.size, _time(customer.created_at), *cells])
            else:
                row = {
                    "customer_id": customer.id,
                    "size": customer.size,
                    "created_at": _time(customer.created_at),
                    "traits": shown,
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += len(batch)
        progress(len(batch))
    return written


async def _trait_values(
    store: Store, query: SegmentQuery, ids: list[str], traits: Sequence[str]
) -> dict[str, dict[str, Any]]:
    if not traits:
        return {}
    values = await store.trait_values(ids, traits)
    allowed = set(ids)
    if query.visible_to is not None:
        consents = await store.consents_of(ids)
        allowed = {
            cid
            for cid in ids
            if evaluate(consents[cid], query.visible_to, query.now).customer_allows
        }
    return {cid: values[cid] for cid in ids if cid in allowed}


def _cell(value: Any) -> str:
    """A trait value in a CSV cell: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _time(value: datetime) -> str:
    return rfc3339.format(value)
