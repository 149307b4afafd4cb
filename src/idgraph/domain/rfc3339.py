"""RFC 3339 timestamps, strictly: ``2026-03-01T12:00:00Z``, ``2026-03-01t12:00:00.5+02:00``.

``datetime.fromisoformat`` reads much more of ISO 8601 than RFC 3339 allows (week dates
``2026-W09-7T12:00Z``, the basic format ``20260301T120000Z``, times without seconds)
and refuses the lower-case ``t`` and ``z`` that RFC 3339 allows. Events and the API
take RFC 3339 only, so a timestamp means the same to idgraph as to every other reader
of the same record; this module is the one place that reads it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_FORM = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d+)?)"
    r"(?P<offset>[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)?",
    re.ASCII,
)
SHAPE = "YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or ±HH:MM"


class NotRfc3339(ValueError):
    """Why a text is not an RFC 3339 timestamp (the message says why, without quoting
    the text: it reads after it)."""


class NoOffset(NotRfc3339):
    """A date and time without an offset: RFC 3339 requires one, and a local time
    would mean whatever the reader's zone makes of it."""

    def __init__(self) -> None:
        super().__init__("needs a time zone offset (e.g. 'Z' or '+02:00')")


def parse(text: str) -> datetime:
    """The time ``text`` names, with its offset. NotRfc3339 unless ``text`` is an RFC 3339
    ``date-time``: a full date, ``T`` (or ``t``), a full time with seconds, an offset."""
    match = _FORM.fullmatch(text)
    if match is None:
        raise NotRfc3339(f"is not an RFC 3339 timestamp ({SHAPE})")
    if match["offset"] is None:
        raise NoOffset
    offset = "+00:00" if match["offset"].upper() == "Z" else match["offset"]
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{offset}")
    except ValueError as exc:  # the shape fits, a value does not: month 13, hour 25, …
        raise NotRfc3339(f"is not an RFC 3339 timestamp ({exc})") from None


def format(value: datetime) -> str:
    """``value`` in RFC 3339, ``Z`` for UTC: ``2026-03-01T12:00:00Z``, as events write it."""
    text = value.isoformat()
    return text[:-6] + "Z" if value.utcoffset() == timedelta(0) else text
