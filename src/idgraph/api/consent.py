"""Which consent decisions are current (read-time view of the consent history)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from idgraph.domain.model import ConsentRecord, ConsentStatus, utcnow


def current_consents(
    history: Iterable[ConsentRecord], now: datetime | None = None
) -> list[ConsentRecord]:
    """The latest decision per purpose, by purpose name. A latest decision that is an
    expired grant counts as no decision: the purpose is left out, older decisions do not
    come back."""
    now = now or utcnow()
    latest: dict[str, ConsentRecord] = {}
    for record in history:
        current = latest.get(record.purpose)
        if current is None or (record.at, record.event_id) >= (current.at, current.event_id):
            latest[record.purpose] = record
    return [
        r
        for _, r in sorted(latest.items())
        if not (
            r.status is ConsentStatus.GRANTED and r.expires_at is not None and r.expires_at <= now
        )
    ]
