"""Small builders for events in tests."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def event(
    *keys: str,
    at: str = "2026-03-01T12:00:00Z",
    source: str = "web",
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An event carrying identity keys written ``kind:value`` (``device:`` and
    ``account:system:id`` become the device and account fields)."""
    raw: dict[str, Any] = {
        "id": event_id or f"t-{next(_ids)}",
        "timestamp": at,
        "source": source,
        "identifiers": [],
    }
    for key in keys:
        kind, _, value = key.partition(":")
        if kind == "device":
            raw["device"] = {"id": value}
        elif kind == "account":
            system, _, account_id = value.partition(":")
            raw["account"] = {"system": system, "id": account_id}
        else:
            raw["identifiers"].append({"kind": kind, "value": value})
    raw.update(extra)
    return raw
