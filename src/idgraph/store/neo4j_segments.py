"""Segment filters (:mod:`idgraph.domain.segment`) as parameterised Cypher.

A :class:`~idgraph.store.port.SegmentQuery` becomes a start, a step per condition and
the tail the caller picks (a page, a count, an export batch), all taken from the
``SEGMENT_*`` fragments of :mod:`idgraph.store.cypher`. Each condition is one fragment, a boolean
expression over the live customer ``c``; ``all``/``any``/``not`` join fragments with
AND/OR/NOT. A fragment's values are named ``$_name``; the compiler renames them
``$p<n>_name`` (one ``n`` per condition) and puts the values in the parameters. The
text is made of fragments, those prefixes and the connectives AND, OR, NOT and WHERE
only: no value a user wrote ever enters it, trait names, kinds and purposes included.

The conditions of a top-level ``all`` (and visibility to a purpose) are separate
``WITH c WHERE`` steps, cheapest first (:func:`idgraph.domain.segment.cost_rank`; see
``SEGMENT_THEN``).

The start. With no help, a statement checks every live customer (about 1.3 s for a
three-condition filter over 50k customers on a busy 2-core machine). When a condition
that every member must meet (the filter itself, or a part of its top-level ``all``)
can be found through an index, the statement starts from the customers that index
leads to instead, and checks the whole filter on those only:

- a trait ``eq``/``in`` strings or booleans: the ``trait_name_value`` index finds the
  reports holding those JSON texts (any report, not only the latest: a superset);
- an identifier kind with a non-empty prefix: the ``identity_kind_value`` index;
- a consent state the purpose's default does not give (``GRANTED`` for an opt-in
  purpose), or visibility to an opt-in purpose: only customers with a decision for the
  purpose can qualify.

Nothing is precomputed per customer, so merges, splits, erasure and consent changes
count as soon as they commit. The one stored aid is ``Trait.instant`` (set on write,
and once at start for reports written before it): RFC 3339 parsing stays in Python
(:func:`idgraph.domain.segment.instant`), so a malformed date in a trait can neither be
read differently nor fail the statement. Trait numbers are read with ``toFloat``:
integers beyond 2**53 compare as the nearest double.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from idgraph.domain.consent import Purpose
from idgraph.domain.model import ConsentStatus
from idgraph.domain.segment import (
    All,
    ConsentCondition,
    ConsentState,
    Filter,
    IdentifierCondition,
    InteractionsCondition,
    Not,
    SizeCondition,
    SourceCondition,
    TimeCondition,
    TraitCondition,
    TraitOp,
    conjuncts,
    cost_rank,
    is_number,
)
from idgraph.domain.segment import Any as AnyOf
from idgraph.store import cypher
from idgraph.store.port import SegmentQuery

_LOCAL = re.compile(r"\$_(\w+)")
_BOUNDS = ("eq", "gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A segment's start (binding distinct candidate customers ``c``), the conditions
    every member meets, in the order they are tested, and their parameters."""

    start: str
    conditions: tuple[str, ...]
    params: dict[str, Any]

    def statement(self, tail: str, *, after_id: bool = False) -> str:
        """``start``, the live (and, for an export's batch, later) customers, a step per
        condition, then ``tail``."""
        where = (
            [cypher.SEGMENT_LIVE, cypher.SEGMENT_AFTER_ID] if after_id else [cypher.SEGMENT_LIVE]
        )
        steps = [f"{cypher.SEGMENT_THEN} {condition}" for condition in self.conditions]
        return "\n".join([self.start, f"WHERE {' AND '.join(where)}", *steps, tail])


def _cypher_number(value: Any) -> int | float:
    """A number the driver can send: Cypher integers are 64-bit, so a larger integer goes
    as the float equal to it (trait values are read with ``toFloat`` anyway)."""
    return value if isinstance(value, float) or -(2**63) <= value < 2**63 else float(value)


_NEGATED = {"true": "false", "false": "true"}


def _folded(connective: str, texts: list[str], *, unit: str, absorbing: str) -> str:
    """``texts`` joined by ``connective`` with the constants an empty ``all`` or ``any``
    compiles to folded away: Neo4j 5.13's planner fails on a constant beside subquery
    expressions (``x OR (true AND (EXISTS {…} OR EXISTS {…}))``: "There should be at
    least one subquery expression"), so only a filter that is constant as a whole
    leaves one in the statement."""
    if absorbing in texts:
        return absorbing
    kept = [text for text in texts if text != unit]
    return f"({f' {connective} '.join(kept)})" if kept else unit


def compile_segment(query: SegmentQuery) -> Compiled:
    return _Compiler(query).compiled()


@dataclass
class _Compiler:
    query: SegmentQuery
    params: dict[str, Any] = field(default_factory=dict)
    # (rank, start fragment, parameter prefix) of each condition a start could use.
    starts: list[tuple[int, str, str]] = field(default_factory=list)
    conditions: int = 0  # fragments so far; the next one's prefix is p<conditions>_
    last: str = ""  # the prefix of the fragment compiled last

    def compiled(self) -> Compiled:
        purposes = {p.name: p for p in self.query.purposes}
        self.params |= {"now": self.query.now, "granted": ConsentStatus.GRANTED.value}
        steps = [
            (cost_rank(part), self.condition(part, purposes, required=True))
            for part in conjuncts(self.query.filter)
        ]
        if (purpose := self.query.visible_to) is not None:
            visible = self.fragment(
                cypher.SEGMENT_VISIBLE, purpose=purpose.name, default=purpose.default_allow
            )
            if not purpose.default_allow:
                self.starts.append((3, cypher.SEGMENT_START["consent"], self.last))
            steps.append((cost_rank(ConsentCondition(purpose.name, ConsentState.GRANTED)), visible))
        start = cypher.SEGMENT_START_ALL
        if self.starts:
            _, fragment, prefix = min(self.starts, key=lambda s: s[0])
            start = self.rename(fragment, prefix)
        steps.sort(key=lambda step: step[0])
        return Compiled(start, tuple(text for _, text in steps), self.params)

    def condition(self, filter: Filter, purposes: dict[str, Purpose], required: bool) -> str:
        """``filter`` as a boolean expression; ``required``: every member must meet it
        (so it may choose the start)."""
        match filter:
            case All(parts):
                joined = [self.condition(p, purposes, required) for p in parts]
                return _folded("AND", joined, unit="true", absorbing="false")
            case AnyOf(parts):
                # A lone part is required as much as its any; several are not.
                joined = [self.condition(p, purposes, required and len(parts) == 1) for p in parts]
                return _folded("OR", joined, unit="false", absorbing="true")
            case Not(part):
                text = self.condition(part, purposes, required=False)
                return _NEGATED.get(text, f"(NOT {text})")
            case TraitCondition():
                return self.trait(filter, required)
            case IdentifierCondition(kind, prefix):
                text = self.fragment(cypher.SEGMENT_IDENTIFIER, kind=kind, prefix=prefix)
                if required and prefix:
                    self.starts.append((2, cypher.SEGMENT_START["identifier"], self.last))
                return text
            case InteractionsCondition(type, channel, since, at_least):
                values = {"type": type, "channel": channel, "since": since}
                if at_least == 1:
                    return self.fragment(cypher.SEGMENT_INTERACTIONS["any"], **values)
                return self.fragment(
                    cypher.SEGMENT_INTERACTIONS["count"], **values, atLeast=at_least
                )
            case ConsentCondition(purpose, status):
                default = purposes[purpose].default_allow
                allows = status is ConsentState.GRANTED
                text = self.fragment(
                    cypher.SEGMENT_CONSENT, purpose=purpose, default=default, allows=allows
                )
                if required and allows is not default:
                    self.starts.append((3, cypher.SEGMENT_START["consent"], self.last))
                return text
            case TimeCondition(time_field, op, value):
                bounds = dict.fromkeys(_BOUNDS) | {op.value: value}
                return self.fragment(cypher.SEGMENT_TIME[time_field.value], **bounds)
            case SizeCondition(op, value):
                bounds = dict.fromkeys(_BOUNDS) | {op.value: value}
                return self.fragment(cypher.SEGMENT_SIZE, **bounds)
            case SourceCondition(source):
                return self.fragment(cypher.SEGMENT_SOURCE, source=source)
        raise TypeError(f"not a segment filter: {filter!r}")  # pragma: no cover

    def trait(self, condition: TraitCondition, required: bool) -> str:
        name, op, operand = condition.name, condition.op, condition.value
        if op is TraitOp.EXISTS:
            text = self.fragment(cypher.SEGMENT_TRAIT["exists"], name=name)
            return text if operand else f"(NOT {text})"
        if op in (TraitOp.EQ, TraitOp.IN):
            operands = operand if isinstance(operand, tuple) else (operand,)
            # Stored values are json.dumps text: equal strings and booleans have equal text.
            texts = [json.dumps(o) for o in operands if not is_number(o)]
            numbers = [_cypher_number(o) for o in operands if is_number(o)]
            text = self.fragment(
                cypher.SEGMENT_TRAIT["in"], name=name, texts=texts, numbers=numbers
            )
            if required and not numbers:
                self.starts.append((1, cypher.SEGMENT_START["trait"], self.last))
            return text
        kind = "number" if is_number(operand) else "instant"
        value = _cypher_number(operand) if is_number(operand) else operand
        bounds = dict.fromkeys(("gt", "gte", "lt", "lte")) | {op.value: value}
        return self.fragment(cypher.SEGMENT_TRAIT[kind], name=name, **bounds)

    def fragment(self, text: str, **values: Any) -> str:
        """``text`` in parentheses, with its ``$_name`` parameters renamed for a new
        condition, whose values join the parameters. Every name the fragment uses must
        be given."""
        prefix = self.last = f"p{self.conditions}_"
        self.conditions += 1
        used = set(_LOCAL.findall(text))
        if used != values.keys():
            raise ValueError(f"fragment parameters {sorted(used)} given {sorted(values)}")
        self.params |= {prefix + name: value for name, value in values.items()}
        return f"({self.rename(text, prefix)})"

    @staticmethod
    def rename(text: str, prefix: str) -> str:
        return _LOCAL.sub(lambda m: f"${prefix}{m[1]}", text.strip())
