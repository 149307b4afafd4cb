"""Prometheus metrics in the text exposition format (version 0.0.4), with no dependency.

One :class:`Metrics` per application (no process-wide registry): counters and histograms
keyed by label values, rendered by :meth:`Metrics.render` for ``GET /metrics``. With
several uvicorn workers each process counts its own requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from idgraph.service import BatchResult

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], values: Iterable[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Counter:
    name: str
    help: str
    label_names: Labels = ()
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, *labels: str, amount: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_labels(self.label_names, labels)} {_number(value)}")
        return lines


@dataclass
class Histogram:
    name: str
    help: str
    label_names: Labels = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: dict[Labels, list[int]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=dict)

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self.sums[labels] = self.sums.get(labels, 0.0) + value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, counts in sorted(self.counts.items()):
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += count
                le = _labels(self.label_names, labels, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {cumulative}")
            plain = _labels(self.label_names, labels)
            lines.append(f"{self.name}_sum{plain} {_number(self.sums[labels])}")
            lines.append(f"{self.name}_count{plain} {cumulative}")
        return lines


class Metrics:
    """Everything ``GET /metrics`` reports."""

    def __init__(self) -> None:
        self.requests = Counter(
            "idgraph_http_requests_total",
            "HTTP requests served, by path, method and status code.",
            ("path", "method", "status"),
        )
        self.latency = Histogram(
            "idgraph_http_request_duration_seconds",
            "Time to serve an HTTP request, by path.",
            ("path",),
        )
        self.errors = Counter(
            "idgraph_graphql_errors_total",
            "GraphQL errors returned to clients, by extensions.code.",
            ("code",),
        )
        self.events = Counter(
            "idgraph_ingest_events_total",
            "Events received by the ingest and link mutations, by outcome.",
            ("outcome",),
        )
        self.merges = Counter("idgraph_ingest_merges_total", "Customer merges made by ingest.")
        self.new_customers = Counter(
            "idgraph_ingest_new_customers_total", "Customers created by ingest."
        )
        self.rejected_links = Counter(
            "idgraph_ingest_rejected_links_total", "Links refused by the resolution rules."
        )

    def record_batch(self, result: BatchResult) -> None:
        for outcome in result.outcomes:
            self.events.inc(outcome.outcome.value)
        self.merges.inc(amount=result.merges)
        self.new_customers.inc(amount=result.new_customers)
        self.rejected_links.inc(amount=result.rejected_links)

    def render(self) -> str:
        families = (
            self.requests,
            self.latency,
            self.errors,
            self.events,
            self.merges,
            self.new_customers,
            self.rejected_links,
        )
        return "\n".join(line for family in families for line in family.render()) + "\n"
