"""How both adapters store a customer's per-kind counts: compact, sorted JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping


def counts_to_text(counts: Mapping[str, int]) -> str:
    return json.dumps(dict(counts), sort_keys=True)


def counts_from_text(text: str) -> dict[str, int]:
    return dict(json.loads(text))
