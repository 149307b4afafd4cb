"""Event validation: every bad input gets a specific error naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest

from idgraph.domain.events import EventParser
from idgraph.domain.normalize import Normalizer
from idgraph.domain.rules import Rules
from idgraph.errors import EventError
from tests.events import event


@pytest.fixture
def parser() -> EventParser:
    rules = Rules(
        blocked_values={"email": frozenset({"test@test.com"})},
        blocked_patterns={"email": (re.compile(r"noreply@.*"),)},
    )
    return EventParser(Normalizer("US"), rules)


def error_of(parser: EventParser, raw: Any) -> str:
    with pytest.raises(EventError) as info:
        parser.parse(raw)
    return str(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "an event must be a JSON object, got array"),
        ({"timestamp": "2026-01-01T00:00:00Z", "source": "web"}, "id: is required"),
        (
            {"id": 7, "timestamp": "2026-01-01T00:00:00Z", "source": "web"},
            "id: must be a non-empty string",
        ),
        ({"id": "e", "source": "web"}, "event 'e': timestamp: is required"),
        (
            {"id": "e", "timestamp": "yesterday", "source": "web"},
            "event 'e': timestamp: 'yesterday' is not an RFC 3339 timestamp",
        ),
        (
            {"id": "e", "timestamp": "2026-01-01T00:00:00", "source": "web"},
            "event 'e': timestamp: needs a time zone offset",
        ),
        (
            {"id": "e", "timestamp": 1700000000, "source": "web"},
            "event 'e': timestamp: must be an RFC 3339 string, got number",
        ),
        ({"id": "e", "timestamp": "2026-01-01T00:00:00Z"}, "event 'e': source: is required"),
        (event("cookie:c", event_id="e", colour="red"), "event 'e': colour: unknown field"),
        (
            event(event_id="e", identifiers="a@x.com"),
            "event 'e': identifiers: must be a list, got string",
        ),
        (event("email:a@", event_id="e"), "event 'e': identifiers[0].value: invalid email address"),
        (event("phone:12", event_id="e"), "event 'e': identifiers[0].value: invalid phone number"),
        (
            event("Email:a@x.com", event_id="e"),
            "event 'e': identifiers[0].kind: kind 'Email' must match [a-z][a-z0-9_]*",
        ),
        (
            event("device:d", event_id="e", identifiers=[{"kind": "device", "value": "d"}]),
            "event 'e': identifiers[0].kind: kind 'device' is reserved",
        ),
        (
            event(event_id="e", identifiers=[{"kind": "email", "value": 42}]),
            "event 'e': identifiers[0].value: must be a string, got number",
        ),
        (
            event(event_id="e", identifiers=[{"kind": "email"}]),
            "event 'e': identifiers[0].value: is required",
        ),
        (
            event(event_id="e", identifiers=[{"kind": "email", "value": "a@x.com", "x": 1}]),
            "event 'e': identifiers[0].x: unknown field",
        ),
        (event(event_id="e", device={"os": "ios"}), "event 'e': device.id: is required"),
        (event(event_id="e", account={"id": "1"}), "event 'e': account.system: is required"),
        (
            event(event_id="e", account={"system": "Shop Floor", "id": "1"}),
            "event 'e': account.system: system 'shop floor' must match",
        ),
        (
            event("cookie:c", event_id="e", traits=["a"]),
            "event 'e': traits: must be an object, got array",
        ),
        (
            event("cookie:c", event_id="e", traits={"blob": "x" * 20_000}),
            "event 'e': traits: larger than 16384 bytes of JSON",
        ),
        (
            event("cookie:c", event_id="e", interaction={"channel": "web"}),
            "event 'e': interaction.type: is required",
        ),
        (
            event("cookie:c", event_id="e", consent={"purpose": "marketing", "status": "maybe"}),
            "event 'e': consent.status: must be 'granted' or 'denied'",
        ),
        (
            event(
                "cookie:c",
                event_id="e",
                consent={"purpose": "marketing", "status": "granted", "expiresAt": "soon"},
            ),
            "event 'e': consent.expiresAt: 'soon' is not an RFC 3339 timestamp",
        ),
        (
            event("email:test@test.com", "email:noreply@shop.com", event_id="e"),
            "event 'e': identifiers: no usable identifier (none given, or all blocked)",
        ),
    ],
)
def test_bad_events_name_the_field_and_reason(parser: EventParser, raw: Any, message: str) -> None:
    assert error_of(parser, raw).startswith(message)


def test_normalization(parser: EventParser) -> None:
    parsed = parser.parse(
        event(
            "email: Alice@Example.COM ",
            "phone:(650) 253-0000",
            "cookie: ck ",
            "device: D1 ",
            "account:Shop: 42 ",
        )
    )
    assert sorted(n.key for n in parsed.nodes) == [
        "account:shop:42",
        "cookie:ck",
        "device:D1",
        "email:alice@example.com",
        "phone:+16502530000",
    ]


def test_same_identifier_twice_in_one_event_is_one_node(parser: EventParser) -> None:
    parsed = parser.parse(event("email:a@x.com", "email:A@X.com"))
    assert [n.key for n in parsed.nodes] == ["email:a@x.com"]


def test_blocked_values_are_dropped_and_counted(parser: EventParser) -> None:
    parsed = parser.parse(
        event("email:a@x.com", "email:NOREPLY@shop.com", "phone: n/a ", "cookie:0000", "user_id:--")
    )
    assert [n.key for n in parsed.nodes] == ["email:a@x.com"]
    assert parser.blocked_dropped == 4


def test_timestamps_are_converted_to_utc(parser: EventParser) -> None:
    parsed = parser.parse(event("cookie:c", at="2026-03-01T12:00:00+02:00"))
    assert parsed.timestamp.isoformat() == "2026-03-01T10:00:00+00:00"
