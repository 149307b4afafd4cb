"""The ``DateTime`` scalar: RFC 3339 in both directions, read by the same rules as an
event's ``timestamp`` (:mod:`idgraph.domain.rfc3339`), so the API and ``idgraph ingest``
agree on what a time is. Strawberry's own reads any ISO 8601 form Python knows."""

from __future__ import annotations

from datetime import datetime

import strawberry

from idgraph.domain import rfc3339


def _serialize(value: datetime) -> str:
    return value.isoformat()


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"DateTime is an RFC 3339 string, got {type(value).__name__}")
    return rfc3339.parse(value)


# For ``scalar_overrides={datetime: DateTime}``: the fields typed ``datetime`` use it.
DateTime = strawberry.scalar(
    name="DateTime",
    description="An RFC 3339 date-time with an offset, e.g. `2026-03-01T12:00:00Z`; "
    "`T` and `Z` may be lower case. Results are in UTC.",
    serialize=_serialize,
    parse_value=_parse,
)
