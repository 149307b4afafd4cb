"""Segments: which customers a filter selects (docs/segments.md).

A filter arrives as JSON, the same for the API and the CLI, and :func:`parse_filter`
turns it into a :data:`Filter`, a tree of frozen dataclasses, or refuses it with a
:class:`~idgraph.errors.FilterError` naming the place inside the filter
(``filter.all[2].interactions.atLeast: expected a non-negative integer``).

:func:`matches` says what every condition means, over a :class:`CustomerSummary`
built by :func:`summarize` from a customer's ordinary reads. It is the definition the
stores' compiled queries (SQL, Cypher) must agree with, and the oracle of their tests:

- ``trait``: on the merged value (latest report wins, :func:`~idgraph.domain.profile.
  merge_traits`). ``eq`` holds when the value is the operand's JSON type and equal
  (strings exactly; numbers by value, ``1`` equals ``1.0``; booleans are not numbers).
  ``in`` holds when ``eq`` holds for one of its operands. ``exists: true`` holds when
  the customer has the trait (whatever its value, ``null`` included), ``false`` when it
  has none. ``gt``/``gte``/``lt``/``lte`` with a number compare numeric values only; with
  an RFC 3339 timestamp they compare string values that are RFC 3339 timestamps, as
  instants. A condition on a trait the customer lacks, or whose value is of another
  type, is false, so its ``not`` is true.
- ``identifier``: the customer has an identity node of that kind (with ``prefix``: whose
  value starts with it, case-sensitively; refused for the personal kinds
  :data:`PERSONAL_KINDS`, whose values a prefix would let a reader probe).
- ``interactions``: at least ``atLeast`` (default 1) of the customer's interactions
  have the type, the channel and a time at or after ``since`` that are given.
- ``consent``: the customer-level decision for the purpose, as
  :func:`idgraph.domain.consent.evaluate` makes it: the latest live decision across the
  customer's nodes, else the purpose's default (an expired grant is no decision).
- ``createdAt``/``updatedAt``: the customer record's times, compared as instants.
- ``size``: the number of identity nodes.
- ``source``: some record the customer holds came from that source: a kept trait
  report, an interaction, a consent decision, or an accepted link between its nodes.
- ``all``/``any``/``not``: and, or, not; ``{"all": []}`` matches every customer,
  ``{"any": []}`` none.

Whether a purpose may see a customer at all (:func:`visible`) is not a filter: the API
and the CLI apply it to every segment, for the purpose they are used under.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any as AnyJSON

from idgraph.domain import rfc3339
from idgraph.domain.consent import ConsentView, Purpose, evaluate
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    ConsentRecord,
    CustomerRecord,
    InteractionView,
    Link,
    NodeRecord,
    TraitRecord,
    split_key,
)
from idgraph.domain.profile import merge_traits
from idgraph.domain.text import text_problem
from idgraph.errors import FilterError

# Hostile input is refused before any of it is evaluated.
MAX_NODES = 64  # conditions and combinators in one filter
MAX_DEPTH = 12  # levels of all/any/not, counting the outer condition
MAX_IN = 100  # operands of one ``in``
MAX_TEXT = 256  # characters of a name, kind, prefix, type, channel, source or value
MAX_AT_LEAST = 2**31 - 1
MAX_SIZE = 2**31 - 1
# Identifier kinds whose values are contact details: no ``prefix`` on them.
PERSONAL_KINDS = frozenset({"email", "phone"})

Scalar = str | int | float | bool


class Comparison(StrEnum):
    EQ = "eq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


class TraitOp(StrEnum):
    EQ = "eq"
    IN = "in"
    EXISTS = "exists"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


class TimeField(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class ConsentState(StrEnum):
    GRANTED = "GRANTED"
    DENIED = "DENIED"


@dataclass(frozen=True, slots=True)
class All:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Any:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Filter


@dataclass(frozen=True, slots=True)
class TraitCondition:
    """``value``: a scalar for ``eq``; a tuple of scalars for ``in``; a bool for
    ``exists``; a number or a UTC datetime for the comparisons."""

    name: str
    op: TraitOp
    value: Scalar | datetime | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class IdentifierCondition:
    kind: str
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class InteractionsCondition:
    type: str | None = None
    channel: str | None = None
    since: datetime | None = None
    at_least: int = 1


@dataclass(frozen=True, slots=True)
class ConsentCondition:
    purpose: str
    status: ConsentState


@dataclass(frozen=True, slots=True)
class TimeCondition:
    field: TimeField
    op: Comparison
    value: datetime


@dataclass(frozen=True, slots=True)
class SourceCondition:
    source: str


@dataclass(frozen=True, slots=True)
class SizeCondition:
    op: Comparison
    value: int


Filter = (
    All
    | Any
    | Not
    | TraitCondition
    | IdentifierCondition
    | InteractionsCondition
    | ConsentCondition
    | TimeCondition
    | SourceCondition
    | SizeCondition
)


@dataclass(frozen=True, slots=True)
class SavedSegment:
    """A named filter. ``filter`` is its JSON as saved; it is parsed again on each use,
    so a segment naming a purpose later removed from the settings is refused then."""

    name: str
    filter: AnyJSON
    description: str
    created_at: datetime


# ---- the evaluator -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InteractionFact:
    type: str
    channel: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """What a filter can ask of one customer, in plain values."""

    id: str
    created_at: datetime
    updated_at: datetime
    size: int
    sources: frozenset[str]
    keys: frozenset[str]
    traits: Mapping[str, AnyJSON]
    interactions: tuple[InteractionFact, ...]
    consent: Mapping[str, ConsentView]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(split_key(key)[0] for key in self.keys)


def summarize(
    customer: CustomerRecord,
    nodes: Sequence[NodeRecord],
    traits: Iterable[TraitRecord],
    interactions: Iterable[InteractionView],
    consents: Sequence[ConsentRecord],
    links: Iterable[Link],
    purposes: Iterable[Purpose],
    now: datetime,
) -> CustomerSummary:
    """A customer's summary from its ordinary reads (``links`` may include links that
    leave the customer or were refused: only accepted ones inside it count)."""
    keys = frozenset(n.key for n in nodes)
    traits = list(traits)
    performed = {i.id: i for i in interactions}  # one interaction, once
    sources = {t.source for t in traits} | {i.source for i in performed.values()}
    sources |= {c.source for c in consents}
    sources |= {k.source for k in links if k.accepted and k.a in keys and k.b in keys}
    return CustomerSummary(
        id=customer.id,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        size=customer.size,
        sources=frozenset(sources),
        keys=keys,
        traits={name: t.value for name, t in merge_traits(traits).items()},
        interactions=tuple(InteractionFact(i.type, i.channel, i.at) for i in performed.values()),
        consent={p.name: evaluate(consents, p, now) for p in purposes},
    )


def visible(view: ConsentView, keys: Iterable[str]) -> bool:
    """Whether consent lets a purpose see anything of a customer: the customer-level
    decision allows it, or one of its identifiers has a live grant of its own (devices
    and accounts follow the customer). A customer it may not see is neither listed nor
    counted in a segment."""
    return view.customer_allows or any(
        view.key_decisions.get(key, False)
        for key in keys
        if split_key(key)[0] not in (DEVICE, ACCOUNT)
    )


def matches(filter: Filter, customer: CustomerSummary) -> bool:
    """Whether ``customer`` is in the segment ``filter`` defines (module docstring)."""
    match filter:
        case All(parts):
            return all(matches(p, customer) for p in parts)
        case Any(parts):
            return any(matches(p, customer) for p in parts)
        case Not(part):
            return not matches(part, customer)
        case TraitCondition(name, op, value):
            if name not in customer.traits:
                return op is TraitOp.EXISTS and value is False
            return _trait_holds(op, value, customer.traits[name])
        case IdentifierCondition(kind, prefix):
            return any(
                k == kind and (prefix is None or v.startswith(prefix))
                for k, v in map(split_key, customer.keys)
            )
        case InteractionsCondition(type, channel, since, at_least):
            found = sum(
                (type is None or i.type == type)
                and (channel is None or i.channel == channel)
                and (since is None or i.at >= since)
                for i in customer.interactions
            )
            return found >= at_least
        case ConsentCondition(purpose, status):
            allows = customer.consent[purpose].customer_allows
            return allows is (status is ConsentState.GRANTED)
        case TimeCondition(field, op, value):
            at = customer.created_at if field is TimeField.CREATED_AT else customer.updated_at
            return _compare(op, at, value)
        case SourceCondition(source):
            return source in customer.sources
        case SizeCondition(op, value):
            return _compare(op, customer.size, value)


def _trait_holds(op: TraitOp, operand: object, value: AnyJSON) -> bool:
    if op is TraitOp.EXISTS:
        return operand is True
    if op is TraitOp.EQ:
        return same_scalar(value, operand)
    if op is TraitOp.IN:
        assert isinstance(operand, tuple)
        return any(same_scalar(value, o) for o in operand)
    if isinstance(operand, datetime):
        at = instant(value) if isinstance(value, str) else None
        return at is not None and _compare(Comparison(op.value), at, operand)
    return is_number(value) and _compare(Comparison(op.value), value, operand)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_scalar(value: object, operand: object) -> bool:
    """``eq`` on trait values: same JSON type (numbers are one type), equal."""
    if isinstance(operand, bool) or isinstance(value, bool):
        return isinstance(operand, bool) and isinstance(value, bool) and value is operand
    if is_number(operand):
        return is_number(value) and value == operand
    return isinstance(value, str) and value == operand


def instant(text: str) -> datetime | None:
    """The UTC instant an RFC 3339 timestamp names, or None for any other text (or one
    whose instant falls outside the years 1-9999)."""
    try:
        return rfc3339.parse(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _compare(op: Comparison, left: AnyJSON, right: AnyJSON) -> bool:
    match op:
        case Comparison.EQ:
            return bool(left == right)
        case Comparison.GT:
            return bool(left > right)
        case Comparison.GTE:
            return bool(left >= right)
        case Comparison.LT:
            return bool(left < right)
        case Comparison.LTE:
            return bool(left <= right)


# ---- the parser --------------------------------------------------------------------

_CONDITIONS = (
    "all",
    "any",
    "not",
    "trait",
    "identifier",
    "interactions",
    "consent",
    "createdAt",
    "updatedAt",
    "source",
    "size",
)
_TIME_FIELDS = {"createdAt": TimeField.CREATED_AT, "updatedAt": TimeField.UPDATED_AT}
_TRAIT_OPS = ", ".join(op.value for op in TraitOp)
_COMPARISONS = ", ".join(op.value for op in Comparison)


def parse_filter(
    raw: object, purposes: Collection[str], root: str = "filter", *, sealed_traits: bool = False
) -> Filter:
    """The filter ``raw`` (decoded JSON) describes; FilterError naming the path of the
    first problem. ``purposes`` are the configured purpose names. With ``sealed_traits``
    (trait values encrypted at rest) only ``exists`` may test a trait: the store cannot
    compare ciphertext."""
    return _Parser(purposes, sealed_traits).condition(raw, root, 1)


class _Parser:
    def __init__(self, purposes: Collection[str], sealed_traits: bool = False) -> None:
        self.purposes = purposes
        self.sealed_traits = sealed_traits
        self.nodes = 0

    def count(self, path: str, n: int = 1) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise FilterError(path, f"a filter holds at most {MAX_NODES} conditions")

    def condition(self, raw: object, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"conditions nest at most {MAX_DEPTH} levels deep")
        self.count(path)
        if not isinstance(raw, dict) or len(raw) != 1:
            raise FilterError(path, f"expected an object with one key of: {', '.join(_CONDITIONS)}")
        [(name, body)] = raw.items()
        where = f"{path}.{name}" if name in _CONDITIONS else path
        match name:
            case "all" | "any":
                parts = self.parts(body, where, depth)
                return All(parts) if name == "all" else Any(parts)
            case "not":
                return Not(self.condition(body, where, depth + 1))
            case "trait":
                return self.trait(body, where)
            case "identifier":
                fields = _object(body, where, required={"kind"}, optional={"prefix"})
                kind = _text(fields["kind"], f"{where}.kind")
                prefix = fields.get("prefix")
                if prefix is not None:
                    prefix = _text(prefix, f"{where}.prefix", empty=True)
                    if kind in PERSONAL_KINDS:
                        raise FilterError(
                            f"{where}.prefix", f"not allowed for the personal kind {kind!r}"
                        )
                return IdentifierCondition(kind, prefix)
            case "interactions":
                fields = _object(body, where, optional={"type", "channel", "since", "atLeast"})
                at_least = fields.get("atLeast", 1)
                if not _is_int(at_least) or not 0 <= at_least <= MAX_AT_LEAST:
                    raise FilterError(f"{where}.atLeast", "expected a non-negative integer")
                return InteractionsCondition(
                    type=_optional_text(fields, "type", where),
                    channel=_optional_text(fields, "channel", where),
                    since=None
                    if "since" not in fields
                    else _time(fields["since"], f"{where}.since"),
                    at_least=at_least,
                )
            case "consent":
                fields = _object(body, where, required={"purpose", "status"})
                purpose = _text(fields["purpose"], f"{where}.purpose")
                if purpose not in self.purposes:
                    raise FilterError(
                        f"{where}.purpose",
                        f"unknown purpose; configured: {', '.join(sorted(self.purposes))}",
                    )
                status = fields["status"]
                if not isinstance(status, str) or status.upper() not in ConsentState.__members__:
                    raise FilterError(f"{where}.status", "expected GRANTED or DENIED")
                return ConsentCondition(purpose, ConsentState(status.upper()))
            case "createdAt" | "updatedAt":
                ops = self.comparisons(body, where, _time)
                return _joined([TimeCondition(_TIME_FIELDS[name], op, v) for op, v in ops])
            case "size":
                ops = self.comparisons(body, where, _size)
                return _joined([SizeCondition(op, v) for op, v in ops])
            case "source":
                return SourceCondition(_text(body, where))
        raise FilterError(
            f"{path}.{_shown_key(name)}",
            f"unknown condition; expected one of: {', '.join(_CONDITIONS)}",
        )

    def parts(self, raw: object, path: str, depth: int) -> tuple[Filter, ...]:
        if not isinstance(raw, list):
            raise FilterError(path, "expected a list of conditions")
        self.count(path, len(raw))  # refuses a huge list before reading any of it
        self.nodes -= len(raw)
        return tuple(self.condition(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(raw))

    def comparisons(
        self, raw: object, path: str, operand: AnyJSON
    ) -> list[tuple[Comparison, AnyJSON]]:
        fields = _object(raw, path, optional={op.value for op in Comparison}, at_least_one=True)
        self.count(path, len(fields) - 1)
        return [(Comparison(op), operand(value, f"{path}.{op}")) for op, value in fields.items()]

    def trait(self, raw: object, path: str) -> Filter:
        ops = {op.value for op in TraitOp}
        fields = _object(raw, path, required={"name"}, optional=ops, at_least_one=True)
        name = _text(fields.pop("name"), f"{path}.name")
        self.count(path, len(fields) - 1)
        conditions: list[Filter] = []
        for key, value in fields.items():
            op, where = TraitOp(key), f"{path}.{key}"
            if self.sealed_traits and op is not TraitOp.EXISTS:
                raise FilterError(
                    where, "trait values are encrypted at rest: only exists can test a trait"
                )
            operand: Scalar | datetime | tuple[Scalar, ...]
            if op is TraitOp.EQ:
                operand = _scalar(value, where)
            elif op is TraitOp.IN:
                if not isinstance(value, list) or not 0 < len(value) <= MAX_IN:
                    raise FilterError(where, f"expected a list of 1-{MAX_IN} values")
                operand = tuple(_scalar(v, f"{where}[{i}]") for i, v in enumerate(value))
            elif op is TraitOp.EXISTS:
                if not isinstance(value, bool):
                    raise FilterError(where, "expected true or false")
                operand = value
            elif is_number(value) and math.isfinite(value):
                operand = value
            elif isinstance(value, str):
                operand = _time(value, where)
            else:
                raise FilterError(where, "expected a number or an RFC 3339 timestamp")
            conditions.append(TraitCondition(name, op, operand))
        return _joined(conditions)


def _joined(conditions: list[Filter]) -> Filter:
    """One condition as itself, several (``{"gte": …, "lt": …}``) as their ``all``."""
    return conditions[0] if len(conditions) == 1 else All(tuple(conditions))


def _object(
    raw: object,
    path: str,
    *,
    required: Collection[str] = (),
    optional: Collection[str] = (),
    at_least_one: bool = False,
) -> dict[str, AnyJSON]:
    allowed = sorted({*required, *optional})
    if not isinstance(raw, dict):
        raise FilterError(path, f"expected an object with keys: {', '.join(allowed)}")
    for key in raw:
        if key not in allowed:
            raise FilterError(
                f"{path}.{_shown_key(key)}", f"unknown key; expected one of: {', '.join(allowed)}"
            )
    for key in required:
        if key not in raw:
            raise FilterError(f"{path}.{key}", "missing")
    if at_least_one and len(raw) == len(required):
        options = ", ".join(sorted(set(optional)))
        raise FilterError(path, f"expected one of: {options}")
    return dict(raw)


def _shown_key(key: object) -> str:
    text = str(key)
    return text if 0 < len(text) <= 64 and text.isidentifier() else repr(text[:64])


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or not (0 if empty else 1) <= len(value) <= MAX_TEXT:
        least = 0 if empty else 1
        raise FilterError(path, f"expected a string of {least}-{MAX_TEXT} characters")
    if (problem := text_problem(value)) is not None:
        raise FilterError(path, problem)
    return value


def _optional_text(fields: Mapping[str, AnyJSON], key: str, path: str) -> str | None:
    return None if key not in fields else _text(fields[key], f"{path}.{key}")


def _scalar(value: object, path: str) -> Scalar:
    if isinstance(value, bool) or (is_number(value) and math.isfinite(value)):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        if len(value) > MAX_TEXT or text_problem(value, free=True) is not None:
            raise FilterError(path, f"expected a string of at most {MAX_TEXT} characters")
        return value
    raise FilterError(path, "expected a string, a number or a boolean")


def _time(value: object, path: str) -> datetime:
    at = instant(value) if isinstance(value, str) else None
    if at is None:
        raise FilterError(path, f"expected an RFC 3339 timestamp ({rfc3339.SHAPE})")
    return at


def _size(value: object, path: str) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_SIZE:  # type: ignore[operator]
        raise FilterError(path, "expected a non-negative integer")
    return value  # type: ignore[return-value]


def conjuncts(filter: Filter) -> list[Filter]:
    """The conditions every member meets: the parts of nested top-level ``all``s."""
    if isinstance(filter, All):
        return [c for part in filter.parts for c in conjuncts(part)]
    return [filter]


def cost_rank(filter: Filter) -> int:
    """The rank of a condition's cost per customer, for the stores' query compilers:
    they test the cheap ones first (``AND`` stops at the first that fails)."""
    match filter:
        case TimeCondition() | SizeCondition():
            return 0  # a property of the customer
        case IdentifierCondition():
            return 1  # its nodes
        case TraitCondition():
            return 2  # its nodes' traits
        case ConsentCondition():
            return 3  # its nodes' decisions
        case InteractionsCondition(at_least=1):
            return 4  # its nodes' interactions, until one fits
        case SourceCondition():
            return 5  # traits, interactions, decisions and links
        case InteractionsCondition():
            return 6  # all its nodes' interactions
    return 7  # any, not: their parts
