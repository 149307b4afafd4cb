"""Event validation: every bad input gets a specific error naming the field."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from idgraph.config import Settings, load_settings
from idgraph.domain.events import KNOWN_FIELDS, EventParser, RawEvent
from idgraph.domain.model import Event, Outcome, utcnow
from idgraph.domain.normalize import Normalizer
from idgraph.domain.rules import Rules
from idgraph.errors import ConfigError, EventError
from idgraph.jsonl import LineError, _decode, decode_event, read_lines
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.events import event

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


@pytest.fixture
def parser() -> EventParser:
    rules = Rules(
        blocked_values={"email": frozenset({"test@test.com"})},
        blocked_patterns={"email": (re.compile(r"noreply@.*"),)},
    )
    return EventParser(Normalizer("US"), rules, SKEW)


def error_of(parser: EventParser, raw: Any) -> str:
    with pytest.raises(EventError) as info:
        parser.parse(raw, NOW)
    return str(info.value)


def nested(levels: int) -> object:
    """``levels`` arrays, one inside the other."""
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


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
            event("cookie:c", event_id="e", at="2026-06-01T12:05:01Z"),
            "event 'e': timestamp: '2026-06-01T12:05:01Z' is more than 5 minutes in the future",
        ),
        (
            event("cookie:c", event_id="e", at="2030-01-01T00:00:00+14:00"),
            "event 'e': timestamp: '2030-01-01T00:00:00+14:00' is more than 5 minutes in the",
        ),
        (
            event("cookie:c", event_id="e", at="1969-12-31T23:59:59Z"),
            "event 'e': timestamp: '1969-12-31T23:59:59Z' is outside 1970-01-01 to 9999-12-31",
        ),
        (
            event("cookie:c", event_id="e", at="9999-12-31T23:59:59-23:59"),
            "event 'e': timestamp: '9999-12-31T23:59:59-23:59' is outside 1970-01-01",
        ),
        (
            event("cookie:c", event_id="e", at="0001-01-01T00:00:00+01:00"),
            "event 'e': timestamp: '0001-01-01T00:00:00+01:00' is outside 1970-01-01",
        ),
        (
            event(
                "cookie:c",
                event_id="e",
                consent={
                    "purpose": "marketing",
                    "status": "granted",
                    "expiresAt": "9999-12-31T23:59:59-23:59",
                },
            ),
            "event 'e': consent.expiresAt: '9999-12-31T23:59:59-23:59' is outside 1970-01-01",
        ),
        (
            event("cookie:c", event_id="a\ud800b"),
            "id: contains a lone surrogate (U+D800)",
        ),
        (event("cookie:c", event_id="a\nb"), "id: contains a control character (U+000A)"),
        (
            event("cookie:c", event_id="e", source="w\x00eb"),
            "event 'e': source: contains a control character (U+0000)",
        ),
        (
            event("cookie:a\ud800b", event_id="e"),
            "event 'e': identifiers[0].value: contains a lone surrogate (U+D800)",
        ),
        (
            event("email:a\x07@x.com", event_id="e"),
            "event 'e': identifiers[0].value: contains a control character (U+0007)",
        ),
        (
            event("cookie\n:c", event_id="e"),
            "event 'e': identifiers[0].kind: kind 'cookie\\n' must match [a-z][a-z0-9_]*",
        ),
        (
            event("cookie:c", event_id="e", device={"id": "d\x85d"}),
            "event 'e': device.id: contains a control character (U+0085)",
        ),
        (
            event("cookie:c", event_id="e", device={"id": "d", "os": "i\udfffos"}),
            "event 'e': device.os: contains a lone surrogate (U+DFFF)",
        ),
        (
            event("cookie:c", event_id="e", account={"system": "shop", "id": "4\x002"}),
            "event 'e': account.id: contains a control character (U+0000)",
        ),
        (
            event("cookie:c", event_id="e", traits={"na\tme": "x"}),
            "event 'e': traits.'na\\tme': names are 1-64 printable characters",
        ),
        (
            event("cookie:c", event_id="e", traits={"\ud800": "x"}),
            "event 'e': traits.'\\ud800': names are 1-64 printable characters",
        ),
        (
            event("cookie:c", event_id="e", traits={"note": "a\x1bb"}),
            "event 'e': traits.note: contains a control character (U+001B)",
        ),
        (
            event("cookie:c", event_id="e", traits={"tags": ["ok", {"k": "\udc80"}]}),
            "event 'e': traits.tags[1].k: contains a lone surrogate (U+DC80)",
        ),
        (
            event("cookie:c", event_id="e", traits={"score": float("nan")}),
            "event 'e': traits.score: must be a finite number, got NaN",
        ),
        (
            event("cookie:c", event_id="e", traits={"score": float("-inf")}),
            "event 'e': traits.score: must be a finite number, got -Infinity",
        ),
        (
            event("cookie:c", event_id="e", traits={"n": 2**63}),
            "event 'e': traits.n: integer out of the 64-bit range",
        ),
        (
            event("cookie:c", event_id="e", traits={"n": -(10**5000)}),
            "event 'e': traits.n: integer out of the 64-bit range",
        ),
        (
            event("cookie:c", event_id="e", traits={"deep": nested(16)}),
            "event 'e': traits.deep" + "[0]" * 15 + ": nested deeper than 16 levels",
        ),
        (
            event("cookie:c", event_id="e", traits={"n": (1, 2)}),
            "event 'e': traits.n: must be a JSON value, got tuple",
        ),
        (
            event(
                "cookie:c",
                event_id="e",
                interaction={"type": "view", "properties": {"a\x00": 1}},
            ),
            "event 'e': interaction.properties.'a\\x00': name contains a control character",
        ),
        (
            event("cookie:c", event_id="e", interaction={"type": "view", "properties": False}),
            "event 'e': interaction.properties: must be an object, got boolean",
        ),
        (
            event("cookie:c", event_id="e", interaction={"type": "view", "channel": "w\reb"}),
            "event 'e': interaction.channel: contains a control character (U+000D)",
        ),
        (
            event("cookie:c", event_id="e", interaction={"type": "view\n"}),
            "event 'e': interaction.type: is required and must match [a-z][a-z0-9_]*",
        ),
        (
            {**event("cookie:c", event_id="e"), "\ud800": 1},
            "event 'e': '\\ud800': unknown field",
        ),
        (
            event("email:test@test.com", "email:noreply@shop.com", event_id="e"),
            "event 'e': identifiers: no usable identifier (none given, or all blocked)",
        ),
    ],
)
def test_bad_events_name_the_field_and_reason(parser: EventParser, raw: Any, message: str) -> None:
    error = error_of(parser, raw)
    assert error.startswith(message)
    error.encode("utf-8")  # a message never carries the character it complains about


def test_free_text_may_hold_tabs_and_newlines_and_16_levels(parser: EventParser) -> None:
    traits = {"note": "line 1\r\nline 2\tend", "deep": nested(15), "n": -(2**63)}
    properties = {"emoji": "👩‍💻 ok", "big": 2**63 - 1, "x": 1.5e308}
    parsed = parser.parse(
        event("cookie:c", traits=traits, interaction={"type": "v", "properties": properties}),
        NOW,
    )
    assert parsed.traits == traits
    assert parsed.interaction is not None
    assert parsed.interaction.properties == properties


def test_timestamps_may_run_ahead_by_the_clock_skew_only(parser: EventParser) -> None:
    ahead = (NOW + SKEW).isoformat()
    assert parser.parse(event("cookie:c", at=ahead), NOW).timestamp == NOW + SKEW
    assert parser.parse(event("cookie:c", at="1970-01-01T00:00:00Z"), NOW)
    grant = {"purpose": "marketing", "status": "granted", "expiresAt": "9999-12-31T23:59:59Z"}
    consent = parser.parse(event("cookie:c", consent=grant), NOW).consent
    assert consent is not None
    assert consent.expires_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_normalization(parser: EventParser) -> None:
    parsed = parser.parse(
        event(
            "email: Alice@Example.COM ",
            "phone:(650) 253-0000",
            "cookie: ck ",
            "device: D1 ",
            "account:Shop: 42 ",
        ),
        NOW,
    )
    assert sorted(n.key for n in parsed.nodes) == [
        "account:shop:42",
        "cookie:ck",
        "device:D1",
        "email:alice@example.com",
        "phone:+16502530000",
    ]


def test_same_identifier_twice_in_one_event_is_one_node(parser: EventParser) -> None:
    parsed = parser.parse(event("email:a@x.com", "email:A@X.com"), NOW)
    assert [n.key for n in parsed.nodes] == ["email:a@x.com"]


def test_blocked_values_are_dropped_and_counted(parser: EventParser) -> None:
    parsed = parser.parse(
        event(
            "email:a@x.com", "email:NOREPLY@shop.com", "phone: n/a ", "cookie:0000", "user_id:--"
        ),
        NOW,
    )
    assert [n.key for n in parsed.nodes] == ["email:a@x.com"]
    assert parser.blocked_dropped == 4


def test_timestamps_are_converted_to_utc(parser: EventParser) -> None:
    parsed = parser.parse(event("cookie:c", at="2026-03-01T12:00:00+02:00"), NOW)
    assert parsed.timestamp.isoformat() == "2026-03-01T10:00:00+00:00"


# ---- whatever JSON comes in: an Event a store can keep, or an EventError ------------

any_char = st.characters(exclude_categories=())  # surrogates and control characters too
tricky_text = st.sampled_from(
    [
        "",
        " ",
        "a\ud800b",
        "\udfff",
        "\x00",
        "a\nb",
        "\t",
        "\x7f",
        "x\x85y",
        "\u2028",
        "\ufeff",
        "👩‍💻",
        "email",
        "device",
        "marketing",
        "granted",
        "a@x.com",
        "+16502530000",
        "2026-03-01T12:00:00Z",
        "2030-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "2026-03-01T12:00:00",
    ]
)
texts = st.text(any_char, max_size=12) | tricky_text
numbers = (
    st.integers()
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1])
    | st.integers(4300, 4500).map(lambda digits: 10**digits)  # past Python's str() limit
    | st.floats()  # NaN and infinities included
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
deep_values = st.builds(
    lambda value, levels: nested_in(value, levels), json_values, st.integers(10, 60)
)
anything = json_values | deep_values


def nested_in(value: object, levels: int) -> object:
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def valid_event() -> dict[str, Any]:
    return {
        "id": "e-1",
        "timestamp": "2026-05-01T00:00:00+02:00",
        "source": "web",
        "identifiers": [{"kind": "email", "value": "a@x.com"}, {"kind": "cookie", "value": "c"}],
        "device": {"id": "d1", "os": "ios", "model": "iPhone"},
        "account": {"system": "shop", "id": "42"},
        "traits": {"name": "Ann", "tags": ["a", {"b": 1}]},
        "interaction": {"type": "view", "channel": "web", "properties": {"p": 1.5}},
        "consent": {
            "purpose": "marketing",
            "status": "granted",
            "expiresAt": "2027-01-01T00:00:00Z",
        },
    }


# Where one value of a valid event is replaced; a text in the path is drawn at random.
PATHS: list[tuple[str | int | None, ...]] = [
    (None,),
    ("id",),
    ("timestamp",),
    ("source",),
    ("identifiers",),
    ("identifiers", 0),
    ("identifiers", 0, "kind"),
    ("identifiers", 0, "value"),
    ("identifiers", 0, None),
    ("device", None),
    ("device", "id"),
    ("device", "os"),
    ("account", "system"),
    ("account", "id"),
    ("traits", None),
    ("traits", "tags", 1, None),
    ("interaction", "type"),
    ("interaction", "channel"),
    ("interaction", "properties"),
    ("interaction", "properties", None),
    ("consent", None),
    ("consent", "expiresAt"),
]


@st.composite
def events_with_one_bad_value(
    draw: st.DrawFn, values: st.SearchStrategy[object] = anything
) -> dict[str, Any]:
    raw = valid_event()
    *parents, last = [p if p is not None else draw(texts) for p in draw(st.sampled_from(PATHS))]
    container: Any = raw
    for step in parents:
        container = container[step]
    container[last] = draw(values)
    return raw


event_shaped = st.dictionaries(st.sampled_from(sorted(KNOWN_FIELDS)) | texts, anything)


def parsed_or_error(parser: EventParser, raw: object) -> Event | EventError:
    try:
        return parser.parse(raw, NOW)
    except EventError as exc:
        return exc


def assert_accepted_or_refused_with_a_reason(parser: EventParser, raw: object) -> None:
    """Any other exception fails the test by itself."""
    result = parsed_or_error(parser, raw)
    if isinstance(result, Event):
        assert_storable(result)
        return
    assert result.reason
    assert result.field or result.reason.startswith("an event must be a JSON object")
    message = str(result)
    message.encode("utf-8")  # printable on a terminal, in a log, in a JSON response
    assert not any(unicodedata.category(c) == "Cc" for c in message)


def assert_storable(event: Event) -> None:
    names = [event.id, event.source]
    names += [s for n in event.nodes for s in (n.key, n.kind, n.value, *n.attrs.values())]
    if event.interaction is not None:
        names += [event.interaction.type, event.interaction.channel or ""]
        json.dumps(event.interaction.properties, allow_nan=False, ensure_ascii=False).encode()
    if event.consent is not None:
        names.append(event.consent.purpose)
        expires_at = event.consent.expires_at
        assert expires_at is None or expires_at >= datetime(1970, 1, 1, tzinfo=UTC)
    for name in names:
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in name), name
    json.dumps(event.traits, allow_nan=False, ensure_ascii=False).encode()
    assert datetime(1970, 1, 1, tzinfo=UTC) <= event.timestamp <= NOW + SKEW


@settings(max_examples=400, deadline=None)
@given(raw=anything | event_shaped)
def test_any_json_is_an_event_or_an_event_error(raw: object) -> None:
    parser = EventParser(Normalizer("US"), Rules(), SKEW)
    assert_accepted_or_refused_with_a_reason(parser, raw)


@settings(max_examples=600, deadline=None)
@given(raw=events_with_one_bad_value())
def test_one_bad_value_in_a_valid_event_is_refused_with_a_reason(raw: dict[str, Any]) -> None:
    parser = EventParser(Normalizer("US"), Rules(), SKEW)
    assert_accepted_or_refused_with_a_reason(parser, raw)


# ---- the clock skew, configured ------------------------------------------------------


async def test_ingest_refuses_events_dated_past_the_configured_skew(store: Store) -> None:
    graph = IdentityGraph(store, Settings(max_clock_skew_seconds=3600))
    soon, late = (utcnow() + timedelta(minutes=m) for m in (30, 120))
    result = await graph.ingest(
        [event("cookie:a", at=soon.isoformat()), event("cookie:b", at=late.isoformat())]
    )
    assert [o.outcome for o in result.outcomes] == [Outcome.ACCEPTED, Outcome.REJECTED]
    assert f"'{late.isoformat()}' is more than 1 hour in the future" in str(
        result.outcomes[1].reason
    )


def test_the_clock_skew_comes_from_the_config_file_or_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "idgraph.toml"
    config.write_text("")
    assert load_settings({}, config).max_clock_skew_seconds == 300
    config.write_text("max_clock_skew_seconds = 86400\n")
    assert load_settings({}, config).max_clock_skew_seconds == 86_400
    env = {"IDGRAPH_MAX_CLOCK_SKEW_SECONDS": "60"}
    assert load_settings(env, config).max_clock_skew_seconds == 60
    with pytest.raises(
        ConfigError, match=r"IDGRAPH_MAX_CLOCK_SKEW_SECONDS: .* greater than or equal to 0"
    ):
        load_settings({"IDGRAPH_MAX_CLOCK_SKEW_SECONDS": "-1"}, config)


# ---- lines read into RawEvents take a shorter path to the same result -----------------


def read_as(line: bytes, decode: Callable[[bytes], object]) -> tuple[str, int]:
    """What a line becomes, read with ``decode``: the Event or the error, and how many
    blocked values were dropped."""
    parser = EventParser(Normalizer("US"), Rules(blocked_values={"email": frozenset({"x"})}), SKEW)
    [(_, _, parsed)] = read_lines(io.BytesIO(line), Settings().max_line_bytes, decode)
    if isinstance(parsed, LineError):
        return parsed.message, 0
    return repr(parsed_or_error(parser, parsed)), parser.blocked_dropped


@settings(max_examples=600, deadline=None)
@given(raw=events_with_one_bad_value(texts) | events_with_one_bad_value() | event_shaped)
@example(raw=valid_event() | {"timestamp": "2030-01-01T00:00:00Z"})
@example(raw=valid_event() | {"id": " "})
@example(raw=valid_event() | {"identifiers": [{"kind": "device", "value": "d"}]})
@example(raw=valid_event() | {"identifiers": [{"kind": "email", "value": "x"}] * 51})
@example(raw={"id": "e", "timestamp": "2026-01-01T00:00:00Z", "source": "s", "device": {"id": ""}})
def test_a_line_read_typed_is_the_same_event_or_error_as_read_plain(raw: dict[str, Any]) -> None:
    try:
        line = json.dumps(raw).encode() + b"\n"
    except ValueError:  # an integer of over 4,300 digits: no line to read
        return
    assert read_as(line, decode_event) == read_as(line, _decode)


def test_common_events_are_read_typed() -> None:
    line = json.dumps(valid_event()).encode()
    assert isinstance(decode_event(line), RawEvent)
    assert isinstance(decode_event(line.replace(b'"source"', b'"extra": 1, "source"')), dict)
