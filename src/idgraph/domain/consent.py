"""The consent policy (docs/concepts.md, "Consent"), as pure functions.

For purpose P, an identifier is visible if its own latest decision for P grants it;
with no decision of its own, if the customer's latest decision for P across its
identity nodes grants it; with no decision at all, if P's default allows it. A decision
past its ``expires_at`` counts as no decision. Devices, accounts, interactions and
traits follow the customer-level decision.

"Latest" means recorded last by idgraph (:attr:`ConsentRecord.order`), not the time a
source claims: an event dated years ahead cannot outrun a withdrawal recorded after it.
Each decision sits on its event's subject node only, so only that node has it as its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from idgraph.domain.model import ConsentRecord, ConsentStatus


@dataclass(frozen=True, slots=True)
class Purpose:
    name: str
    description: str
    default_allow: bool


DEFAULT_PURPOSES: tuple[Purpose, ...] = (
    Purpose("support", "Helping the customer with a request they made", True),
    Purpose("analytics", "Aggregate measurement of how products are used (opt-in)", False),
    Purpose("marketing", "Marketing messages and campaigns (opt-in)", False),
    Purpose("personalization", "Tailoring content to the customer (opt-in)", False),
)


def _latest(records: Iterable[ConsentRecord]) -> ConsentRecord | None:
    """The decision idgraph recorded last."""
    return max(records, key=lambda r: r.order, default=None)


def _grants(decision: ConsentRecord | None, now: datetime) -> bool | None:
    """True/False for a live decision, None for none (or an expired one)."""
    if decision is None or (decision.expires_at is not None and decision.expires_at <= now):
        return None
    return decision.status is ConsentStatus.GRANTED


@dataclass(frozen=True, slots=True)
class ConsentView:
    """What a customer's consent allows for one purpose."""

    customer_allows: bool
    key_decisions: dict[str, bool]

    def allows_identifier(self, key: str) -> bool:
        return self.key_decisions.get(key, self.customer_allows)


def evaluate(records: Iterable[ConsentRecord], purpose: Purpose, now: datetime) -> ConsentView:
    relevant = [r for r in records if r.purpose == purpose.name]
    by_key: dict[str, list[ConsentRecord]] = {}
    for record in relevant:
        by_key.setdefault(record.key, []).append(record)
    key_decisions = {}
    for key, own in by_key.items():
        granted = _grants(_latest(own), now)
        if granted is not None:
            key_decisions[key] = granted
    customer = _grants(_latest(relevant), now)
    return ConsentView(
        customer_allows=purpose.default_allow if customer is None else customer,
        key_decisions=key_decisions,
    )


def current_decisions(records: Iterable[ConsentRecord], now: datetime) -> dict[str, ConsentRecord]:
    """The latest live decision per purpose across a customer's nodes."""
    by_purpose: dict[str, list[ConsentRecord]] = {}
    for record in records:
        by_purpose.setdefault(record.purpose, []).append(record)
    current = {}
    for purpose, decisions in sorted(by_purpose.items()):
        latest = _latest(decisions)
        if latest is not None and _grants(latest, now) is not None:
            current[purpose] = latest
    return current
