"""Reading Prometheus text the way Prometheus does (``prometheus_client``'s parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, ``None`` when absent."""
    return parsed.get((name, frozenset(labels.items())))


def types(text: str) -> dict[str, str]:
    """Family name → type (``counter``, ``gauge``, ``histogram``, …)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
