"""Segments in the embedded store: a filter compiled to one parameterised SQL condition
on a ``customers`` row ``c``.

Nothing is precomputed: every condition is evaluated at read time over the tables the
write path keeps anyway (nodes by cluster, traits by node and name, consents by node,
performed by node), through correlated subqueries that the existing indexes answer.
So a segment is correct by construction through merges, splits, erasure and consent
changes — they change those rows, and the next read sees them — and the write path
does no extra work.

Every value in the filter (trait names included) is a parameter; the SQL text is made
only of fixed fragments chosen by the filter's shape. Each compiled condition is 0 or 1,
never NULL, so ``NOT`` means what :func:`idgraph.domain.segment.matches` says.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any as AnyValue

from idgraph.domain.consent import Purpose
from idgraph.domain.model import ACCOUNT, DEVICE
from idgraph.domain.segment import (
    All,
    Any,
    Comparison,
    ConsentCondition,
    ConsentState,
    Filter,
    IdentifierCondition,
    InteractionsCondition,
    Not,
    SizeCondition,
    SourceCondition,
    TimeCondition,
    TimeField,
    TraitCondition,
    TraitOp,
    conjuncts,
    cost_rank,
    instant,
    is_number,
)
from idgraph.errors import InvalidInput
from idgraph.store.port import SegmentQuery, SegmentSort

INSTANT = "idgraph_instant"

_OPS = {
    Comparison.EQ: "=",
    Comparison.GT: ">",
    Comparison.GTE: ">=",
    Comparison.LT: "<",
    Comparison.LTE: "<=",
}
_NUMBER = "json_type(t.value) IN ('integer', 'real')"

# The merged (latest-wins) value of one trait: the report of the customer's nodes with
# the latest (at, event id, node key), as ``domain.profile.merge_traits`` picks it.
# Trait reports ``t`` of nodes ``n``, latest first in ``merge_traits``'s order (time, then
# event id, then node key); fixed-width ``at`` text sorts as time does.
LATEST_TRAIT_FIRST = "t.at DESC, t.event_id DESC, n.key DESC"
_LATEST_TRAIT = (
    "coalesce((SELECT {predicate} FROM nodes n JOIN traits t ON t.node = n.id "
    "WHERE n.cluster = c.cluster AND t.name = ? "
    f"ORDER BY {LATEST_TRAIT_FIRST} LIMIT 1), 0)"
)
# The latest decision for a purpose among some consent rows: 1 (a live grant), 0 (a
# live denial) or NULL (none, or an expired one: then the purpose's default applies).
_LATEST_DECISION = (
    "(SELECT CASE WHEN s.expires_at IS NULL OR s.expires_at > ? "
    "THEN s.status = 'granted' END FROM {rows} AND s.purpose = ? "
    "ORDER BY s.recorded_at DESC, s.rowid DESC LIMIT 1)"
)
_CUSTOMER_DECISION = _LATEST_DECISION.format(
    rows="nodes n JOIN consents s ON s.node = n.id WHERE n.cluster = c.cluster"
)
_OWN_GRANT = (
    "EXISTS (SELECT 1 FROM nodes v WHERE v.cluster = c.cluster AND v.kind NOT IN (?, ?) "
    "AND " + _LATEST_DECISION.format(rows="consents s WHERE s.node = v.id") + " = 1)"
)
_SOURCE = (
    "(EXISTS (SELECT 1 FROM nodes n JOIN traits t ON t.node = n.id "
    "WHERE n.cluster = c.cluster AND t.source = ?) "
    "OR EXISTS (SELECT 1 FROM nodes n JOIN performed p ON p.node = n.id "
    "JOIN interactions i ON i.id = p.interaction WHERE n.cluster = c.cluster AND i.source = ?) "
    "OR EXISTS (SELECT 1 FROM nodes n JOIN consents s ON s.node = n.id "
    "WHERE n.cluster = c.cluster AND s.source = ?) "
    "OR EXISTS (SELECT 1 FROM nodes n JOIN links l ON l.a = n.id JOIN nodes m ON m.id = l.b "
    "WHERE n.cluster = c.cluster AND m.cluster = c.cluster AND l.accepted AND l.source = ?))"
)


def register(db: sqlite3.Connection) -> None:
    """The SQL function the compiled conditions call: ``idgraph_instant(text)`` is the
    UTC instant of an RFC 3339 timestamp as stored text (``ts``), else NULL."""
    db.create_function(INSTANT, 1, _instant_text, deterministic=True)


def _instant_text(value: object) -> str | None:
    at = instant(value) if isinstance(value, str) else None
    return None if at is None else _ts(at)


def _ts(value: datetime) -> str:
    # One format for every stored time; imported here as ``sqlite`` imports this module.
    from idgraph.store.sqlite import ts

    return ts(value)


@dataclass
class Compiled:
    """A condition on ``customers c``: SQL text and its parameters, in order."""

    sql: str
    params: list[AnyValue] = field(default_factory=list)


def compile_query(query: SegmentQuery) -> Compiled:
    """The condition a customer row meets to be a member of ``query``'s segment.

    Every condition of a top-level ``all`` is tested on each candidate, cheapest first
    (``AND`` stops at the first that fails). Those that can name a small superset of
    their customers through an index or a narrow scan (an identifier kind or prefix: the
    ``nodes.key`` index; a trait value; a consent decision that departs from the
    default) come first as ``c.cluster IN (…)``: each set is read once, the narrowest
    drives the query (only its customers are visited), the others prune them before
    the per-customer tests."""
    compiler = _Compiler(query.purposes, _ts(query.now))
    parts = conjuncts(query.filter)
    tests = [compiler.condition(p) for p in sorted(parts, key=cost_rank)]
    if query.visible_to is not None:
        tests.append(compiler.visible(query.visible_to))
    drivers = [d for d in map(compiler.driver, parts) if d is not None]
    supersets = [
        Compiled(f"c.cluster IN ({d.sql})", d.params)
        for _, d in sorted(drivers, key=lambda d: d[0])
    ]
    tests = supersets + tests
    if not tests:
        return Compiled("1")
    return Compiled(" AND ".join(f"({t.sql})" for t in tests), [p for t in tests for p in t.params])


@dataclass
class _Compiler:
    purposes: tuple[Purpose, ...]
    now: str

    def condition(self, filter: Filter) -> Compiled:
        match filter:
            case All(parts):
                return self.joined(parts, "AND", "1")
            case Any(parts):
                return self.joined(parts, "OR", "0")
            case Not(part):
                inner = self.condition(part)
                return Compiled(f"NOT ({inner.sql})", inner.params)
            case TraitCondition():
                return self.trait(filter)
            case IdentifierCondition(kind, prefix):
                if prefix is None:
                    return Compiled(
                        "EXISTS (SELECT 1 FROM nodes n WHERE n.cluster = c.cluster AND n.kind = ?)",
                        [kind],
                    )
                return Compiled(
                    "EXISTS (SELECT 1 FROM nodes n WHERE n.cluster = c.cluster AND n.kind = ? "
                    "AND substr(n.value, 1, ?) = ?)",
                    [kind, len(prefix), prefix],
                )
            case InteractionsCondition():
                return self.interactions(filter)
            case ConsentCondition(purpose, status):
                default = next(p.default_allow for p in self.purposes if p.name == purpose)
                allows = f"coalesce({_CUSTOMER_DECISION}, ?)"
                return Compiled(
                    f"{allows} = ?",
                    [self.now, purpose, int(default), int(status is ConsentState.GRANTED)],
                )
            case TimeCondition(time_field, op, value):
                column = "c.created_at" if time_field is TimeField.CREATED_AT else "c.updated_at"
                return Compiled(f"{column} {_OPS[op]} ?", [_ts(value)])
            case SourceCondition(source):
                return Compiled(_SOURCE, [source] * 4)
            case SizeCondition(op, value):
                return Compiled(f"c.size {_OPS[op]} ?", [value])

    def driver(self, filter: Filter) -> tuple[int, Compiled] | None:
        """A rank (lower: likely smaller) and a query of the clusters of a superset of the
        customers ``filter`` selects, read without visiting every customer; None when
        there is none cheaper than testing every customer."""
        match filter:
            case IdentifierCondition(kind, prefix):
                low = f"{kind}:{prefix or ''}"
                bound = _successor(low)
                if bound is None:
                    return None
                return (0 if prefix else 4), Compiled(
                    "SELECT n.cluster FROM nodes n WHERE n.key >= ? AND n.key < ?", [low, bound]
                )
            case TraitCondition(name, op, operand) if op is not TraitOp.EXISTS or operand:
                predicate: str
                params: list[AnyValue]
                if op is TraitOp.EXISTS:
                    predicate, params = "1", []
                else:
                    predicate, params = self.trait_predicate(op, operand)
                rank = 1 if op in (TraitOp.EQ, TraitOp.IN) else 3
                return rank, Compiled(
                    "SELECT n.cluster FROM traits t JOIN nodes n ON n.id = t.node "
                    f"WHERE t.name = ? AND ({predicate})",
                    [name, *params],
                )
            case ConsentCondition(purpose, status):
                default = next(p.default_allow for p in self.purposes if p.name == purpose)
                if default is (status is ConsentState.GRANTED):
                    return None  # customers without a decision match: no narrow set
                # Only customers with a decision of that status can match.
                return 2, Compiled(
                    "SELECT n.cluster FROM consents s JOIN nodes n ON n.id = s.node "
                    "WHERE s.purpose = ? AND s.status = ?",
                    [purpose, "granted" if status is ConsentState.GRANTED else "denied"],
                )
        return None

    def joined(self, parts: tuple[Filter, ...], word: str, empty: str) -> Compiled:
        if not parts:
            return Compiled(empty)
        compiled = [self.condition(p) for p in parts]
        return Compiled(
            "(" + f" {word} ".join(f"({c.sql})" for c in compiled) + ")",
            [p for c in compiled for p in c.params],
        )

    def trait(self, condition: TraitCondition) -> Compiled:
        name, op, operand = condition.name, condition.op, condition.value
        if op is TraitOp.EXISTS:
            exists = (
                "EXISTS (SELECT 1 FROM nodes n JOIN traits t ON t.node = n.id "
                "WHERE n.cluster = c.cluster AND t.name = ?)"
            )
            return Compiled(exists if operand else f"NOT {exists}", [name])
        predicate, params = self.trait_predicate(op, operand)
        return Compiled(_LATEST_TRAIT.format(predicate=predicate), [*params, name])

    def trait_predicate(self, op: TraitOp, operand: object) -> tuple[str, list[AnyValue]]:
        """The condition on one trait report ``t`` (its JSON text ``t.value``)."""
        if op is TraitOp.EQ:
            return _equals(operand)
        if op is TraitOp.IN:
            assert isinstance(operand, tuple)
            each = [_equals(o) for o in operand]
            return "(" + " OR ".join(f"({p})" for p, _ in each) + ")", [
                v for _, ps in each for v in ps
            ]
        compare = _OPS[Comparison(op.value)]
        if isinstance(operand, datetime):
            instant = f"{INSTANT}(json_extract(t.value, '$'))"
            return f"json_type(t.value) = 'text' AND {instant} {compare} ?", [_ts(operand)]
        return f"{_NUMBER} AND json_extract(t.value, '$') {compare} ?", [operand]

    def interactions(self, condition: InteractionsCondition) -> Compiled:
        if condition.at_least == 0:
            return Compiled("1")
        where = ["n.cluster = c.cluster"]
        params: list[AnyValue] = []
        for column, value in (("i.type", condition.type), ("i.channel", condition.channel)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if condition.since is not None:
            where.append("i.at >= ?")
            params.append(_ts(condition.since))
        # An interaction attached to several of the customer's nodes counts once; the
        # count stops at ``at_least``.
        return Compiled(
            "(SELECT count(*) FROM (SELECT DISTINCT p.interaction FROM nodes n "
            "JOIN performed p ON p.node = n.id JOIN interactions i ON i.id = p.interaction "
            f"WHERE {' AND '.join(where)} LIMIT ?)) >= ?",
            [*params, condition.at_least, condition.at_least],
        )

    def visible(self, purpose: Purpose) -> Compiled:
        """:func:`idgraph.domain.segment.visible` for ``purpose``."""
        return Compiled(
            f"(coalesce({_CUSTOMER_DECISION}, ?) = 1 OR {_OWN_GRANT})",
            [
                self.now,
                purpose.name,
                int(purpose.default_allow),
                DEVICE,
                ACCOUNT,
                self.now,
                purpose.name,
            ],
        )


def _successor(text: str) -> str | None:
    """The least text after every text starting with ``text`` (in SQLite's binary order,
    which is code point order), or None when there is no such text."""
    for i in range(len(text) - 1, -1, -1):
        if ord(text[i]) < 0x10FFFF:
            following = ord(text[i]) + 1
            return text[:i] + chr(0xE000 if 0xD800 <= following <= 0xDFFF else following)
    return None


def _equals(operand: object) -> tuple[str, list[AnyValue]]:
    """``eq`` on the trait value ``t.value`` (JSON text): same JSON type, equal."""
    if isinstance(operand, bool):
        return f"json_type(t.value) = '{'true' if operand else 'false'}'", []
    if is_number(operand):
        return f"{_NUMBER} AND json_extract(t.value, '$') = ?", [operand]
    return "json_type(t.value) = 'text' AND json_extract(t.value, '$') = ?", [operand]


# ---- reads ---------------------------------------------------------------------------


# How long one segment read may run. SQLite's work cannot be interrupted by the API's
# asyncio timeout (the call does not wait), so a costly filter is stopped here instead.
BUDGET_SECONDS = 10.0
_CHECK_EVERY = 10_000  # SQLite virtual machine instructions between clock checks


@contextmanager
def stopped_when(
    db: sqlite3.Connection, stop: Callable[[], bool], every: int, error: Exception
) -> Iterator[None]:
    """Run the statements inside with ``stop`` asked every ``every`` SQLite virtual
    machine instructions; once it says so, the statement is interrupted and ``error``
    raised instead."""
    db.set_progress_handler(stop, every)
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "interrupted" not in str(exc):
            raise
        raise error from None
    finally:
        db.set_progress_handler(None, 0)


@contextmanager
def budget(db: sqlite3.Connection, seconds: float | None = BUDGET_SECONDS) -> Iterator[None]:
    """Stop the statements run inside after ``seconds`` (None: never): InvalidInput, as
    the filter is what made the read too costly."""
    if seconds is None:
        yield
        return
    deadline = time.monotonic() + seconds
    too_costly = InvalidInput(
        f"filter: evaluating it took over {seconds:g} s; narrow it (e.g. add a trait, "
        "identifier or consent condition)"
    )
    with stopped_when(db, lambda: time.monotonic() > deadline, _CHECK_EVERY, too_costly):
        yield


def page(
    db: sqlite3.Connection,
    query: SegmentQuery,
    *,
    first: int,
    after: tuple[datetime, str] | None,
    sort: SegmentSort,
) -> tuple[list[str], bool, int | None]:
    """The ids of one page, whether more follow, and the total count (None when the page
    is empty: no row carried it). The condition is evaluated once per customer: the
    total is a window over the members, the page a slice of them."""
    where = compile_query(query)
    column = "c.created_at" if sort.by_created else "c.updated_at"
    direction, beyond = ("DESC", "<") if sort.descending else ("ASC", ">")
    params = list(where.params)
    position = ""
    if after is not None:
        position = f"WHERE (at, id) {beyond} (?, ?)"
        params += [_ts(after[0]), after[1]]
    rows = db.execute(
        f"SELECT id, total FROM (SELECT c.id AS id, {column} AS at, count(*) OVER () AS total "
        f"FROM customers c WHERE {where.sql}) {position} "
        f"ORDER BY at {direction}, id {direction} LIMIT ?",
        (*params, first + 1),
    ).fetchall()
    total = rows[0][1] if rows else None
    return [cid for cid, _ in rows[:first]], len(rows) > first, total


def count(db: sqlite3.Connection, query: SegmentQuery) -> int:
    where = compile_query(query)
    row = db.execute(f"SELECT count(*) FROM customers c WHERE {where.sql}", where.params)
    return int(row.fetchone()[0])


def ids_after(db: sqlite3.Connection, query: SegmentQuery, last: str, limit: int) -> list[str]:
    """Members with an id after ``last``, by id (the ``customers.id`` index gives the
    order, so a batch costs its share of the scan)."""
    where = compile_query(query)
    rows = db.execute(
        f"SELECT c.id FROM customers c WHERE c.id > ? AND ({where.sql}) ORDER BY c.id LIMIT ?",
        (last, *where.params, limit),
    )
    return [cid for (cid,) in rows]
