"""Parsing raw events (JSON objects) into validated, normalized :class:`Event` values.

The event format is documented in docs/events.md (JSON Schema: docs/event.schema.json).
Every problem raises an :class:`EventError` naming the field and the reason; the event is
then rejected whole.

Whatever JSON comes in, :meth:`EventParser.parse` either returns an Event that every
store can keep and every response can carry, or raises an EventError — never another
exception. So text is acceptable text (:mod:`idgraph.domain.text`); numbers in traits
and properties are finite and fit 64 bits; traits and properties nest at most
MAX_DEPTH levels; timestamps lie between 1970 and now plus the allowed clock skew.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any

import msgspec

from idgraph.domain import rfc3339
from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    ConsentDecision,
    ConsentStatus,
    Event,
    IdentityNode,
    InteractionInput,
)
from idgraph.domain.normalize import KIND_PATTERN, KIND_RULE, RESERVED_KINDS, Normalizer
from idgraph.domain.rules import Rules
from idgraph.domain.text import quoted, shown, text_problem
from idgraph.errors import EventError, IdentifierError

MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 256  # source, interaction channel
# Validating a phone number costs ~75 µs, an email ~10: each distinct raw value is
# normalized once while it stays among the CACHE_SIZE most recently used (~450 bytes
# each). A million demo events hold ~620,000 distinct values: a cache of 262,144 missed
# 980,000 times, one of this size 640,000 times (~5 s of CPU less, ~120 MB more).
CACHE_SIZE = 524_288
MAX_IDENTIFIERS = 50
MAX_TRAITS = 100
MAX_TRAIT_NAME = 64
MAX_PROPERTIES_BYTES = 16_384
MAX_DEPTH = 16  # levels of objects and arrays in traits or properties, counting the outer one
# Integers must fit 64 bits: Neo4j stores no larger, and JSON readers in other languages
# lose precision beyond. (Python's own limit, 4,300 digits, is far larger.)
MIN_INT, MAX_INT = -(2**63), 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
INT64_DIGITS = 19


def json_int(digits: str) -> int:
    """An integer literal read from JSON (``json.loads(…, parse_int=json_int)``): exact
    when it may fit 64 bits; past 19 digits, a stand-in just outside the range, so the
    event holding it is refused for its range (converting thousands of digits costs
    quadratic time, and Python refuses over 4,300)."""
    if len(digits.lstrip("-")) <= INT64_DIGITS:
        return int(digits)
    return MIN_INT - 1 if digits.startswith("-") else MAX_INT + 1


KNOWN_FIELDS = frozenset(
    {
        "id",
        "timestamp",
        "source",
        "identifiers",
        "device",
        "account",
        "traits",
        "interaction",
        "consent",
    }
)


class EventParser:
    """Validates and normalizes events. Keeps counters of what it dropped.

    ``max_clock_skew`` is how far after idgraph's clock an event's timestamp may lie:
    source clocks drift a little, but an event dated ahead would outrank everything
    recorded until its date came (latest trait wins)."""

    def __init__(self, normalizer: Normalizer, rules: Rules, max_clock_skew: timedelta) -> None:
        self.normalizer = normalizer
        self.rules = rules
        self.max_clock_skew = max_clock_skew
        self._ahead = f"is more than {_duration(max_clock_skew)} in the future"
        self.blocked_dropped = 0
        self._node = lru_cache(maxsize=CACHE_SIZE)(self._uncached_node)

    def parse(self, raw: object, now: datetime) -> Event:
        """``raw`` as an Event, or an EventError. ``now`` is when idgraph received it
        (one time per batch), which bounds the event's timestamp.

        ``raw`` is JSON as Python values, or a :class:`RawEvent`: that one is checked
        along a shorter path, and if any check fails it is checked again as plain JSON,
        so the error is the one the same JSON would get."""
        if type(raw) is RawEvent:
            event = self._parse_typed(raw, now + self.max_clock_skew)
            if event is not None:
                return event
            raw = msgspec.to_builtins(raw)
        if not isinstance(raw, dict):
            raise EventError("", f"an event must be a JSON object, got {_type(raw)}")
        event_id = raw.get("id")
        if event_id is None:
            raise EventError("id", "is required")
        if not isinstance(event_id, str) or not event_id.strip():
            raise EventError("id", "must be a non-empty string")
        if len(event_id) > MAX_ID_LENGTH:
            raise EventError("id", f"longer than {MAX_ID_LENGTH} characters")
        problem = text_problem(event_id)
        if problem:
            raise EventError("id", problem)
        try:
            return self._parse(raw, event_id, now + self.max_clock_skew)
        except EventError as exc:
            raise EventError(exc.field, exc.reason, event_id) from None

    def _parse(self, raw: dict[str, Any], event_id: str, latest: datetime) -> Event:
        if not KNOWN_FIELDS.issuperset(raw):
            raise EventError(shown(sorted(raw.keys() - KNOWN_FIELDS)[0]), "unknown field")
        timestamp = parse_timestamp(raw.get("timestamp"), "timestamp")
        if timestamp > latest:
            raise EventError("timestamp", f"{quoted(raw['timestamp'])} {self._ahead}")
        source = _required_string(raw, "source")
        nodes: dict[str, IdentityNode] = {}
        for node in self._identity_nodes(raw):
            nodes.setdefault(node.key, node)
        if not nodes:
            raise EventError("identifiers", "no usable identifier (none given, or all blocked)")
        return Event(
            id=event_id,
            timestamp=timestamp,
            source=source,
            nodes=self._by_priority(nodes),
            traits=_traits(raw.get("traits")),
            interaction=_interaction(raw.get("interaction")),
            consent=_consent(raw.get("consent")),
        )

    def _parse_typed(self, raw: RawEvent, latest: datetime) -> Event | None:
        """The checks of ``_parse`` on a RawEvent, whose decoder has checked the fields'
        names and types already; None at the first problem, which is left to the
        general path to name."""
        event_id, source = raw.id, raw.source.strip()
        if not (0 < len(event_id) <= MAX_ID_LENGTH and event_id.isprintable() and source):
            return None
        if len(raw.identifiers) > MAX_IDENTIFIERS or not event_id.strip():
            return None
        node = self._node
        nodes: dict[str, IdentityNode] = {}
        blocked = 0
        try:
            timestamp = parse_timestamp(raw.timestamp, "timestamp")
            if timestamp > latest:
                return None
            _text(source, "source")
            for item in raw.identifiers:
                if item.kind in RESERVED_KINDS:
                    return None
                found = None if item.value is None else node(item.kind, item.value, None)
                if found is None:
                    blocked += 1
                else:
                    nodes.setdefault(found.key, found)
            for part, read in ((raw.device, self._device), (raw.account, self._account)):
                if part is not None:
                    found = read(part)
                    if found is None:
                        blocked += 1
                    else:
                        nodes.setdefault(found.key, found)
            if not nodes:
                return None
            event = Event(
                id=event_id,
                timestamp=timestamp,
                source=source,
                nodes=self._by_priority(nodes),
                traits=_traits(raw.traits),
                interaction=_interaction(raw.interaction),
                consent=_consent(raw.consent),
            )
        except (EventError, IdentifierError):
            return None
        self.blocked_dropped += blocked
        return event

    def _by_priority(self, nodes: dict[str, IdentityNode]) -> tuple[IdentityNode, ...]:
        """Highest priority first, event order on ties. Done here, not by the planner,
        so a bulk ingest sorts on the core that checks lines, not on the one that writes."""
        if len(nodes) == 1:
            return tuple(nodes.values())
        return tuple(sorted(nodes.values(), key=lambda n: self.rules.priority(n.kind)))

    def _identity_nodes(self, raw: dict[str, Any]) -> list[IdentityNode]:
        nodes: list[IdentityNode | None] = []
        identifiers = raw.get("identifiers", [])
        if not isinstance(identifiers, list):
            raise EventError("identifiers", f"must be a list, got {_type(identifiers)}")
        if len(identifiers) > MAX_IDENTIFIERS:
            raise EventError("identifiers", f"more than {MAX_IDENTIFIERS} identifiers")
        node = self._node
        for i, item in enumerate(identifiers):
            # The common case first, building no field name: a cached {kind, value}.
            if type(item) is dict and len(item) == 2:
                kind, value = item.get("kind"), item.get("value")
                if type(kind) is str and type(value) is str and kind not in RESERVED_KINDS:
                    try:
                        nodes.append(node(kind, value, None))
                        continue
                    except IdentifierError:
                        pass  # reported below, with its field
            where = f"identifiers[{i}]"
            if not isinstance(item, dict):
                raise EventError(where, f"must be an object {{kind, value}}, got {_type(item)}")
            if len(item) != 2 or "kind" not in item or "value" not in item:
                extra = item.keys() - {"kind", "value"}
                if extra:
                    raise EventError(f"{where}.{shown(sorted(extra)[0])}", "unknown field")
                missing = "kind" if "kind" not in item else "value"
                raise EventError(f"{where}.{missing}", "is required")
            kind, value = item["kind"], item["value"]
            if not isinstance(kind, str):
                raise EventError(f"{where}.kind", f"must be a string, got {_type(kind)}")
            if kind in RESERVED_KINDS:
                raise EventError(
                    f"{where}.kind", f"kind {kind!r} is reserved: use the event's {kind!r} field"
                )
            if value is None:
                nodes.append(None)
                continue
            if not isinstance(value, str):
                raise EventError(f"{where}.value", f"must be a string, got {_type(value)}")
            nodes.append(self._normalized(where, kind, value))
        device = raw.get("device")
        if device is not None:
            nodes.append(self._device(device))
        account = raw.get("account")
        if account is not None:
            nodes.append(self._account(account))
        kept = [n for n in nodes if n is not None]
        self.blocked_dropped += len(nodes) - len(kept)
        return kept

    def _device(self, device: object) -> IdentityNode | None:
        device = _object(device, "device", "{id, os?, model?}")
        device_id = _string(device, "id", "device.id")
        node = self._normalized("device", DEVICE, device_id)
        attrs = {}
        for name in ("os", "model"):
            if device.get(name) is not None:
                attrs[name] = _text(_string(device, name, f"device.{name}")[:128], f"device.{name}")
        return IdentityNode(node.key, node.kind, node.value, attrs) if node and attrs else node

    def _account(self, account: object) -> IdentityNode | None:
        account = _object(account, "account", "{system, id}")
        system = _string(account, "system", "account.system")
        account_id = _string(account, "id", "account.id")
        return self._normalized("account", ACCOUNT, account_id, system)

    def _normalized(
        self, where: str, kind: str, value: str, system: str | None = None
    ) -> IdentityNode | None:
        try:
            return self._node(kind, value, system)
        except IdentifierError as exc:
            raise EventError(f"{where}.{exc.field}" if exc.field else where, exc.reason) from None

    def _uncached_node(self, kind: str, value: str, system: str | None) -> IdentityNode | None:
        """The normalized node, or None for a blocked value (checked raw and normalized)."""
        if self.rules.is_blocked(kind, value):
            return None
        if kind == DEVICE and system is None:
            node = self.normalizer.device(value)
        elif kind == ACCOUNT and system is not None:
            node = self.normalizer.account(system, value)
        else:
            node = self.normalizer.identifier(kind, value)
        return None if self.rules.is_blocked(node.kind, node.value) else node


@cache
def _field_names(shape: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", shape))


def _object(raw: object, field: str, shape: str) -> dict[str, Any]:
    """``raw`` as an object whose keys are among those ``shape`` names (``{a, b?}``)."""
    if not isinstance(raw, dict):
        raise EventError(field, f"must be an object {shape}, got {_type(raw)}")
    names = _field_names(shape)
    if not names.issuperset(raw):
        extra = raw.keys() - names
        raise EventError(f"{field}.{shown(sorted(extra)[0])}", "unknown field")
    return raw


def _string(raw: Mapping[str, Any], name: str, field: str) -> str:
    value = raw.get(name)
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be a string, got {_type(value)}")
    return value


def _text(value: object, field: str) -> str:
    """A string of at most MAX_NAME_LENGTH acceptable characters (no control ones)."""
    if not isinstance(value, str):
        raise EventError(field, f"must be a string, got {_type(value)}")
    if len(value) > MAX_NAME_LENGTH:
        raise EventError(field, f"longer than {MAX_NAME_LENGTH} characters")
    problem = text_problem(value)
    if problem:
        raise EventError(field, problem)
    return value


def _required_string(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str) or not value.strip():
        raise EventError(field, "must be a non-empty string")
    return _text(value.strip(), field)


def parse_timestamp(value: object, field: str) -> datetime:
    """An RFC 3339 timestamp with an offset, in UTC, from 1970 to the end of year 9999."""
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be an RFC 3339 string, got {_type(value)}")
    try:
        parsed = rfc3339.parse(value)
    except rfc3339.NoOffset as exc:
        raise EventError(field, str(exc)) from None
    except rfc3339.NotRfc3339 as exc:
        raise EventError(field, f"{quoted(value)} {exc}") from None
    try:
        utc: datetime | None = parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 would be in year 10000 in UTC
        utc = None
    if utc is None or utc < EARLIEST:
        raise EventError(field, f"{quoted(value)} is outside 1970-01-01 to 9999-12-31 (UTC)")
    return utc


def _traits(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise EventError("traits", f"must be an object, got {_type(raw)}")
    if len(raw) > MAX_TRAITS:
        raise EventError("traits", f"more than {MAX_TRAITS} traits")
    for name in raw:
        if not (0 < len(name) <= MAX_TRAIT_NAME and name.isprintable()):
            raise EventError(
                f"traits.{shown(name)}", f"names are 1-{MAX_TRAIT_NAME} printable characters"
            )
    _check_json("traits", raw)
    return raw


def _interaction(raw: object) -> InteractionInput | None:
    if raw is None:
        return None
    raw = _object(raw, "interaction", "{type, channel?, properties?}")
    kind = raw.get("type")
    if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
        raise EventError("interaction.type", f"is required and {KIND_RULE}")
    channel = raw.get("channel")
    if channel is not None:
        channel = _text(channel, "interaction.channel")
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise EventError("interaction.properties", f"must be an object, got {_type(properties)}")
    _check_json("interaction.properties", properties)
    return InteractionInput(kind, channel, properties)


def _consent(raw: object) -> ConsentDecision | None:
    if raw is None:
        return None
    raw = _object(raw, "consent", "{purpose, status, expiresAt?}")
    purpose = raw.get("purpose")
    if not isinstance(purpose, str) or not KIND_PATTERN.match(purpose):
        raise EventError("consent.purpose", f"is required and {KIND_RULE}")
    status = raw.get("status")
    if status not in ("granted", "denied"):
        raise EventError("consent.status", "must be 'granted' or 'denied'")
    expires = raw.get("expiresAt")
    expires_at = None if expires is None else parse_timestamp(expires, "consent.expiresAt")
    return ConsentDecision(purpose, ConsentStatus(status), expires_at)


# The common shape of an event as msgspec Structs: a JSON line decodes into a RawEvent
# (the names and types of its top level and identifiers checked in C) for about what
# decoding it into dicts costs, and the checks left to Python are the values'
# (:meth:`EventParser._parse_typed`). A line of any other shape is decoded into dicts
# and checked field by field.


class _Identifier(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    value: str | None


class RawEvent(msgspec.Struct, forbid_unknown_fields=True):
    """An event in the common shape, decoded but not yet checked (see ``parse``)."""

    id: str
    timestamp: str
    source: str
    identifiers: list[_Identifier] = []
    # The rarer parts stay JSON values, checked by the general path's own functions.
    device: Any = None
    account: Any = None
    traits: dict[str, Any] | None = None
    interaction: Any = None
    consent: Any = None


class _Invalid(Exception):
    """A value inside traits or properties is refused; ``path`` is filled on the way out,
    so the common (valid) path builds no field names."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []


def _check_json(field: str, value: dict[str, Any]) -> None:
    """Refuse what a store could not keep or a JSON reader could not read back (see the
    module docstring), and objects over MAX_PROPERTIES_BYTES of compact JSON."""
    try:
        bound = _json_size(value, 1)
    except _Invalid as exc:
        raise EventError(field + "".join(reversed(exc.path)), exc.reason) from None
    if bound > MAX_PROPERTIES_BYTES and len(_compact(value)) > MAX_PROPERTIES_BYTES:
        raise EventError(field, f"larger than {MAX_PROPERTIES_BYTES} bytes of JSON")


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _json_size(value: object, depth: int) -> int:
    """Checks a JSON value found ``depth`` levels deep; returns an upper bound of its
    length as compact JSON (ASCII escapes included), so that small values, nearly all
    of them, need no serializing to be measured."""
    if isinstance(value, str):
        problem = text_problem(value, free=True)
        if problem:
            raise _Invalid(problem)
        return len(value) * (2 if value.isascii() else 12) + 2
    if value is None or value is True or value is False:
        return 5
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise _Invalid("integer out of the 64-bit range (-2**63 to 2**63-1)")
        return 20
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(f"must be a finite number, got {_NON_FINITE[repr(value)]}")
        return 24
    if depth > MAX_DEPTH:
        raise _Invalid(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        size = 2
        for key, item in value.items():
            try:
                if not isinstance(key, str):
                    raise _Invalid(f"object keys must be strings, got {_type(key)}")
                problem = text_problem(key)
                if problem:
                    raise _Invalid(f"name {problem}")
                size += len(key) * (2 if key.isascii() else 12) + 4 + _json_size(item, depth + 1)
            except _Invalid as exc:
                exc.path.append(f".{shown(key) if isinstance(key, str) else quoted(key)}")
                raise
        return size
    if isinstance(value, list):
        size = 2
        for i, item in enumerate(value):
            try:
                size += _json_size(item, depth + 1) + 1
            except _Invalid as exc:
                exc.path.append(f"[{i}]")
                raise
        return size
    raise _Invalid(f"must be a JSON value, got {_type(value)}")


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _duration(delta: timedelta) -> str:
    """``300 s`` as ``5 minutes``, for messages."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def _type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )
