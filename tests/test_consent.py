"""The consent policy, case by case (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from idgraph.domain.consent import Purpose, current_decisions, evaluate
from idgraph.domain.model import ConsentRecord, ConsentStatus

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OPT_IN = Purpose("marketing", "", default_allow=False)
OPT_OUT = Purpose("support", "", default_allow=True)
G, D = ConsentStatus.GRANTED, ConsentStatus.DENIED


def rec(
    key: str,
    status: ConsentStatus,
    days_ago: int,
    expires_in: int | None = None,
    purpose: str = "marketing",
    *,
    claimed: datetime | None = None,
    seq: int = 0,
) -> ConsentRecord:
    """A decision idgraph recorded ``days_ago``; its source claimed ``claimed`` (default:
    the same time)."""
    expires = None if expires_in is None else NOW + timedelta(days=expires_in)
    recorded = NOW - timedelta(days=days_ago)
    return ConsentRecord(
        key,
        purpose,
        status,
        claimed or recorded,
        expires,
        "t",
        f"e{days_ago}-{seq}",
        recorded_at=recorded,
        seq=seq,
    )


def test_no_decision_falls_back_to_the_purpose_default() -> None:
    assert not evaluate([], OPT_IN, NOW).allows_identifier("email:a")
    assert evaluate([], OPT_OUT, NOW).allows_identifier("email:a")


def test_own_decision_beats_the_customer_level_one() -> None:
    view = evaluate([rec("email:a", D, 5), rec("phone:b", G, 1)], OPT_IN, NOW)
    assert view.customer_allows, "latest decision across nodes is the grant"
    assert not view.allows_identifier("email:a")
    assert view.allows_identifier("phone:b")
    assert view.allows_identifier("cookie:c"), "no own decision: customer level"


def test_latest_decision_wins() -> None:
    assert not evaluate(
        [rec("email:a", G, 5), rec("email:a", D, 1)], OPT_IN, NOW
    ).allows_identifier("email:a")
    assert evaluate([rec("email:a", D, 5), rec("email:a", G, 1)], OPT_IN, NOW).allows_identifier(
        "email:a"
    )


def test_an_expired_grant_is_no_decision_and_older_ones_do_not_come_back() -> None:
    records = [rec("email:a", G, 30), rec("email:a", G, 10, expires_in=-1)]
    view = evaluate(records, OPT_IN, NOW)
    assert not view.allows_identifier("email:a")
    assert current_decisions(records, NOW) == {}
    live = [rec("email:a", G, 10, expires_in=5)]
    assert evaluate(live, OPT_IN, NOW).allows_identifier("email:a")


def test_other_purposes_do_not_count() -> None:
    view = evaluate([rec("email:a", G, 1, purpose="analytics")], OPT_IN, NOW)
    assert not view.allows_identifier("email:a")
    assert not view.customer_allows


def test_the_decision_recorded_last_wins_whatever_time_its_source_claims() -> None:
    future = datetime(2030, 1, 1, tzinfo=UTC)
    grant_from_the_future = rec("email:a", G, 5, claimed=future)
    withdrawal = rec("email:a", D, 1)
    for records in ([grant_from_the_future, withdrawal], [withdrawal, grant_from_the_future]):
        view = evaluate(records, OPT_IN, NOW)
        assert not view.allows_identifier("email:a")
        assert not view.customer_allows
        assert current_decisions(records, NOW)["marketing"].status is D


def test_decisions_recorded_together_go_in_batch_order() -> None:
    first, second = rec("email:a", G, 1, seq=0), rec("phone:b", D, 1, seq=1)
    assert current_decisions([second, first], NOW)["marketing"] is second
    assert not evaluate([second, first], OPT_IN, NOW).customer_allows


def test_the_latest_recorded_decision_if_expired_is_no_decision() -> None:
    records = [rec("email:a", G, 5), rec("email:a", G, 1, expires_in=-1, claimed=NOW)]
    assert current_decisions(records, NOW) == {}
    assert not evaluate(records, OPT_IN, NOW).allows_identifier("email:a")
