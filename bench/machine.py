"""A fixed measure of this machine's speed, printed with each benchmark's figures.

A shared machine's speed moves by a quarter within the hour and more from day to day,
so a figure means little without the speed of the machine that produced it: compare
figures taken on different days or machines by this one (lower is faster), and
distrust a run whose measure before and after differ much. The best of the timings is
the machine's own speed; their median, how much of it other work left (on a shared
2-core machine the same timing moved from 18 to 39 ms within a second)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

RUNS = 20


def _workload() -> int:
    """Interpreter work of the kinds ingest and the API do: text built and hashed,
    dictionary updates, a sort."""
    counts: dict[str, int] = {}
    for i in range(100_000):
        key = f"email:p{i % 5_000}@x.com"
        counts[key] = counts.get(key, 0) + i
    return len(sorted(counts.items()))


@dataclass(frozen=True)
class Speed:
    best: float  # ms
    median: float  # ms

    def __str__(self) -> str:
        return f"{self.best:.1f} / {self.median:.1f} ms"


def measure() -> Speed:
    """RUNS timings of the fixed workload, now."""
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        _workload()
        timings.append((time.perf_counter() - started) * 1_000)
    return Speed(min(timings), statistics.median(timings))


def speed_line(before: Speed, after: Speed) -> str:
    return (
        "machine speed (bench/machine.py, best / median; lower is faster): "
        f"{before} before the run, {after} after"
    )
