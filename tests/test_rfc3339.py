"""RFC 3339 timestamps: what events and the API accept, and what they refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.domain import rfc3339

OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS
)


@given(TIMES)
def test_what_it_writes_it_reads_back(value: datetime) -> None:
    text = rfc3339.format(value)
    assert rfc3339.parse(text) == value
    assert rfc3339.parse(text.lower()) == value  # `t` and `z` are RFC 3339 too


def test_utc_is_written_with_z() -> None:
    assert rfc3339.format(datetime(2026, 3, 1, 12, tzinfo=UTC)) == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01t12:00:00z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T13:30:00.25+01:30", datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-03-01T12:00:00.1234567-00:00", datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)),
    ],
)
def test_rfc_3339_forms_are_read(text: str, expected: datetime) -> None:
    assert rfc3339.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-W09-7T12:00:00Z",  # ISO 8601 week date
        "2026-W09-7T12:00Z",
        "2026-060T12:00:00Z",  # ISO 8601 ordinal date
        "20260301T120000Z",  # ISO 8601 basic format
        "2026-03-01T12:00Z",  # no seconds
        "2026-03-01T12Z",
        "2026-03-01 12:00:00Z",  # a space for the T
        "2026-03-01T12:00:00+0100",  # offset without a colon
        "2026-03-01T12:00:00+01",
        "2026-03-01T12:00:00+24:00",
        "2026-03-01T12:00:00,5Z",  # a comma for the dot
        "２０２６-03-01T12:00:00Z",  # non-ASCII digits
        "2026-03-01",
        "",
    ],
)
def test_iso_8601_forms_outside_rfc_3339_are_refused(text: str) -> None:
    with pytest.raises(rfc3339.NotRfc3339, match="is not an RFC 3339 timestamp"):
        rfc3339.parse(text)


def test_impossible_values_say_which_part_is_wrong() -> None:
    with pytest.raises(rfc3339.NotRfc3339, match=r"is not an RFC 3339 timestamp \(month"):
        rfc3339.parse("2026-13-01T12:00:00Z")


def test_a_missing_offset_is_named() -> None:
    with pytest.raises(rfc3339.NoOffset, match="needs a time zone offset"):
        rfc3339.parse("2026-03-01T12:00:00")
