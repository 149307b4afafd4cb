"""Resolution rules: blocked values, per-kind limits with priorities, a size cap."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from idgraph.domain.model import ACCOUNT, DEVICE

# Values that mean "no value" in real-world data; compared after trimming, case-insensitively.
PLACEHOLDER_VALUES = frozenset(
    {"", "null", "nil", "undefined", "unknown", "n/a", "na", "none", "-1"}
)
_ZEROS_OR_DASHES = re.compile(r"^[0\-]+$")

DEFAULT_LIMITS: Mapping[str, int] = {"user_id": 1, "email": 5, "phone": 5}
DEFAULT_LIMIT = 50
DEFAULT_MAX_SIZE = 1000


@dataclass(frozen=True)
class Rules:
    """The rules a merge must satisfy. ``limits`` not listed default to ``default_limit``.

    ``priority`` orders a kind's nodes inside an event: lower numbers join the group first.
    """

    limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    default_limit: int = DEFAULT_LIMIT
    max_size: int = DEFAULT_MAX_SIZE
    blocked_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    blocked_patterns: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    priorities: Mapping[str, int] = field(default_factory=dict)

    def limit(self, kind: str) -> int:
        return self.limits.get(kind, self.default_limit)

    def priority(self, kind: str) -> int:
        """user_id, email, phone, other identifiers and accounts, cookies, devices last."""
        return self.ranks.get(kind, OTHER_PRIORITY)

    @cached_property
    def ranks(self) -> Mapping[str, int]:
        """The defaults and the configured priorities in one mapping (kinds not in it
        rank :data:`OTHER_PRIORITY`): the event checks rank every node of every event."""
        return {**_DEFAULT_PRIORITY, **self.priorities}

    def is_blocked(self, kind: str, value: str) -> bool:
        """True for placeholder values and configured ones; ``value`` is normalized."""
        folded = value.strip().lower()
        if folded in PLACEHOLDER_VALUES or _ZEROS_OR_DASHES.match(folded):
            return True
        if folded in self.blocked_values.get(kind, ()):
            return True
        return any(p.fullmatch(value) for p in self.blocked_patterns.get(kind, ()))

    def refusal(
        self,
        group_size: int,
        group_counts: Mapping[str, int],
        other_size: int,
        other_counts: Mapping[str, int],
    ) -> str | None:
        """The rule that refuses merging two customers, or None if the merge is allowed.

        A kind's limit refuses a merge only when both sides have that kind, so a
        customer already over a limit (rules made stricter later) can still gain
        other kinds.
        """
        violated = [
            kind
            for kind, n in other_counts.items()
            if n and group_counts.get(kind, 0) and n + group_counts[kind] > self.limit(kind)
        ]
        if violated:
            return "limit:" + min(violated, key=lambda k: (self.priority(k), k))
        if group_size + other_size > self.max_size:
            return "max_size"
        return None


# Devices come last: a cookie belongs to one browser profile, a device is hardware that
# a household shares. The first node is the event's subject (it carries the event's
# data), so an anonymous visit {cookie, shared tablet} belongs to the cookie's person.
OTHER_PRIORITY = 3  # identifier kinds not named below
_DEFAULT_PRIORITY: Mapping[str, int] = {
    "user_id": 0,
    "email": 1,
    "phone": 2,
    ACCOUNT: OTHER_PRIORITY,
    "cookie": 4,
    DEVICE: 5,
}
