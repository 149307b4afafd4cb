"""The embedded store writes every time as fixed-width ISO text in UTC, so that text order
is time order (retention, segments and the rejected-link index compare times as text):
its fast path for UTC times writes what ``isoformat`` writes, and other times go to
``isoformat`` itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from idgraph.store.sqlite import ts

utc_times = st.datetimes(timezones=st.just(UTC))
offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1)))
)


@given(utc_times)
@example(datetime(2026, 1, 1, 0, 0, 23, tzinfo=UTC))
@example(datetime(2026, 1, 1, 0, 0, 23, 120_000, tzinfo=UTC))
@example(datetime(1, 1, 1, tzinfo=UTC))
@example(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
def test_a_utc_time_is_written_as_isoformat_writes_it(at: datetime) -> None:
    assert ts(at) == at.isoformat(timespec="microseconds")
    assert len(ts(at)) == 32


@given(utc_times, utc_times)
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (ts(a) < ts(b)) == (a < b)


@given(st.datetimes(timezones=offsets) | st.datetimes())
def test_other_times_are_written_as_isoformat_writes_them(at: datetime) -> None:
    assert ts(at) == at.isoformat(timespec="microseconds")
