"""Parsing raw events (JSON objects) into validated, normalized :class:`Event` values.

The event format is documented in the README ("Event format"). Every problem raises an
:class:`EventError` naming the field and the reason; the event is then rejected whole.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from idgraph.domain.model import (
    ACCOUNT,
    DEVICE,
    ConsentDecision,
    ConsentStatus,
    Event,
    IdentityNode,
    InteractionInput,
)
from idgraph.domain.normalize import KIND_PATTERN, RESERVED_KINDS, Normalizer
from idgraph.domain.rules import Rules
from idgraph.errors import EventError, IdentifierError

MAX_ID_LENGTH = 256
# Validating an email or phone costs ~50 µs: each distinct raw value is normalized once.
CACHE_SIZE = 262_144
MAX_IDENTIFIERS = 50
MAX_TRAITS = 100
MAX_TRAIT_NAME = 64
MAX_PROPERTIES_BYTES = 16_384
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
    """Validates and normalizes events. Keeps counters of what it dropped."""

    def __init__(self, normalizer: Normalizer, rules: Rules) -> None:
        self.normalizer = normalizer
        self.rules = rules
        self.blocked_dropped = 0
        self._node = lru_cache(maxsize=CACHE_SIZE)(self._uncached_node)

    def parse(self, raw: object) -> Event:
        if not isinstance(raw, dict):
            raise EventError("", f"an event must be a JSON object, got {_type(raw)}")
        event_id = raw.get("id")
        if event_id is None:
            raise EventError("id", "is required")
        if not isinstance(event_id, str) or not event_id.strip():
            raise EventError("id", "must be a non-empty string")
        if len(event_id) > MAX_ID_LENGTH:
            raise EventError("id", f"longer than {MAX_ID_LENGTH} characters")
        try:
            return self._parse(raw, event_id)
        except EventError as exc:
            exc.event_id = event_id
            raise EventError(exc.field, exc.reason, event_id) from None

    def _parse(self, raw: dict[str, Any], event_id: str) -> Event:
        unknown = raw.keys() - KNOWN_FIELDS
        if unknown:
            raise EventError(sorted(unknown)[0], "unknown field")
        timestamp = parse_timestamp(raw.get("timestamp"), "timestamp")
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
            nodes=tuple(nodes.values()),
            traits=_traits(raw.get("traits")),
            interaction=_interaction(raw.get("interaction")),
            consent=_consent(raw.get("consent")),
        )

    def _identity_nodes(self, raw: dict[str, Any]) -> list[IdentityNode]:
        nodes: list[IdentityNode | None] = []
        identifiers = raw.get("identifiers", [])
        if not isinstance(identifiers, list):
            raise EventError("identifiers", f"must be a list, got {_type(identifiers)}")
        if len(identifiers) > MAX_IDENTIFIERS:
            raise EventError("identifiers", f"more than {MAX_IDENTIFIERS} identifiers")
        for i, item in enumerate(identifiers):
            where = f"identifiers[{i}]"
            if not isinstance(item, dict):
                raise EventError(where, f"must be an object {{kind, value}}, got {_type(item)}")
            if len(item) != 2 or "kind" not in item or "value" not in item:
                extra = item.keys() - {"kind", "value"}
                if extra:
                    raise EventError(f"{where}.{sorted(extra)[0]}", "unknown field")
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
                attrs[name] = _string(device, name, f"device.{name}")[:128]
        return dataclasses.replace(node, attrs=attrs) if node and attrs else node

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
    extra = raw.keys() - _field_names(shape)
    if extra:
        raise EventError(f"{field}.{sorted(extra)[0]}", "unknown field")
    return raw


def _string(raw: Mapping[str, Any], name: str, field: str) -> str:
    value = raw.get(name)
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be a string, got {_type(value)}")
    return value


def parse_timestamp(value: object, field: str) -> datetime:
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be an RFC 3339 string, got {_type(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventError(field, f"{value[:64]!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise EventError(field, "needs a time zone offset (e.g. 'Z' or '+02:00')")
    return parsed.astimezone(UTC)


def _required_string(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str) or not value.strip():
        raise EventError(field, "must be a non-empty string")
    return value.strip()


def _traits(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise EventError("traits", f"must be an object, got {_type(raw)}")
    if len(raw) > MAX_TRAITS:
        raise EventError("traits", f"more than {MAX_TRAITS} traits")
    for name in raw:
        if not name or len(name) > MAX_TRAIT_NAME or not name.isprintable():
            raise EventError(
                f"traits.{name[:64]}", f"names are 1-{MAX_TRAIT_NAME} printable characters"
            )
    _check_size("traits", raw)
    return raw


def _interaction(raw: object) -> InteractionInput | None:
    if raw is None:
        return None
    raw = _object(raw, "interaction", "{type, channel?, properties?}")
    kind = raw.get("type")
    if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
        raise EventError("interaction.type", "is required and must match [a-z][a-z0-9_]*")
    channel = raw.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise EventError("interaction.channel", f"must be a string, got {_type(channel)}")
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):
        raise EventError("interaction.properties", f"must be an object, got {_type(properties)}")
    _check_size("interaction.properties", properties)
    return InteractionInput(kind, channel, properties)


def _consent(raw: object) -> ConsentDecision | None:
    if raw is None:
        return None
    raw = _object(raw, "consent", "{purpose, status, expiresAt?}")
    purpose = raw.get("purpose")
    if not isinstance(purpose, str) or not KIND_PATTERN.match(purpose):
        raise EventError("consent.purpose", "is required and must match [a-z][a-z0-9_]*")
    status = raw.get("status")
    if status not in ("granted", "denied"):
        raise EventError("consent.status", "must be 'granted' or 'denied'")
    expires = raw.get("expiresAt")
    expires_at = None if expires is None else parse_timestamp(expires, "consent.expiresAt")
    return ConsentDecision(purpose, ConsentStatus(status), expires_at)


def _check_size(field: str, value: dict[str, Any]) -> None:
    flat = all(isinstance(v, str | int | float | bool | None) for v in value.values())
    if flat and sum(len(k) + len(str(v)) for k, v in value.items()) < MAX_PROPERTIES_BYTES // 2:
        return  # surely small: skip serializing it
    if len(json.dumps(value, separators=(",", ":"))) > MAX_PROPERTIES_BYTES:
        raise EventError(field, f"larger than {MAX_PROPERTIES_BYTES} bytes of JSON")


def _type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )
