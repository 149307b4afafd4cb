"""Prometheus metrics, kept by ``prometheus_client``.

One :class:`Metrics` per application (or per CLI command that counts), each with its
own registry: no process-wide state but ``prometheus_client``'s own.

**One process** (``idgraph serve``): values live in memory; ``GET /metrics`` adds the
standard process metrics (CPU, memory, file descriptors, garbage collector).

**Several processes** (``idgraph serve --workers N``; CLI ingests next to a server):
``prometheus_client``'s multiprocess mode. Every process writes its values to files in
the directory ``PROMETHEUS_MULTIPROC_DIR`` names, and a scrape, whichever worker answers
it, adds up the files of every process that ever wrote there, so a counter never goes
backwards between scrapes. ``idgraph serve --workers N`` makes a temporary directory when
the variable is unset; set it (for ``serve`` and ``ingest`` alike) and ingests from the
CLI are counted too. ``prometheus_client`` reads the variable when it is first imported,
so it must be in the environment when the process starts. The standard process
collectors see only the process that answers, so in this mode the process metrics are
kept like any other: CPU time summed over every process, memory and open files over
the live ones (a worker marks itself dead when it stops).

Store gauges (customers, identity nodes, links, …) are read from the store when
scraped: a count per table, no scan of the graph. SQLite counts a table by reading its
rows, so it counts off the event loop, which serves requests meanwhile.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from idgraph.domain.model import Outcome
from idgraph.service import BatchResult

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROCESS_DIR = os.environ.get(DIRECTORY_VARIABLE)  # as prometheus_client read it
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Routes with their methods: their request counters exist, at 0, from the start.
ROUTES = {
    "/graphql": ("GET", "POST"),
    "/healthz": ("GET",),
    "/readyz": ("GET",),
    "/metrics": ("GET",),
    "/ui/health": ("GET",),
}
# Gauge name → the key of :meth:`idgraph.store.port.Store.counts`.
STORE_COUNTS = {
    "identity_nodes": "nodes",
    "customers": "customers",
    "links": "links",
    "rejected_links": "rejected_links",
    "aliases": "aliases",
    "interactions": "interactions",
    "events": "events",
}
PROCESS_REFRESH_SECONDS = 1.0
# The files prometheus_client writes in multiprocess mode: KIND_PID.db.
VALUE_FILES = ("counter", "gauge", "histogram", "summary")


class Metrics:
    """Everything ``GET /metrics`` reports, and the calls that count it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # In multiprocess mode values go to files; registries only read them back.
        registry = None if MULTIPROCESS_DIR else self.registry
        self.requests = Counter(
            "idgraph_http_requests",
            "HTTP requests served, by path, method and status code.",
            ("path", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "idgraph_http_request_duration_seconds",
            "Time to serve an HTTP request, by path.",
            ("path",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "idgraph_graphql_errors",
            "GraphQL errors returned to clients, by extensions.code.",
            ("code",),
            registry=registry,
        )
        self.events = Counter(
            "idgraph_ingest_events",
            "Events received by the ingest and link mutations and CLI ingests, by outcome.",
            ("outcome",),
            registry=registry,
        )
        self.merges = Counter(
            "idgraph_ingest_merges", "Customer merges made by ingest.", registry=registry
        )
        self.new_customers = Counter(
            "idgraph_ingest_new_customers", "Customers created by ingest.", registry=registry
        )
        self.rejected_links = Counter(
            "idgraph_ingest_rejected_links",
            "Links refused by the resolution rules.",
            registry=registry,
        )
        self.store_up = Gauge(
            "idgraph_store_up",
            "1 when the store answered the last scrape's counts, else 0.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.store = {
            name: Gauge(
                f"idgraph_store_{name}",
                f"{name.replace('_', ' ').capitalize()} in the store, when last scraped.",
                registry=registry,
                multiprocess_mode="mostrecent",
            )
            for name in STORE_COUNTS
        }
        self._request_counters: dict[tuple[str, str, int], Counter] = {}
        self._latency_histograms: dict[str, Histogram] = {}
        for path, methods in ROUTES.items():
            self.latency.labels(path)
            for method in methods:
                self.requests.labels(path, method, "200")
        for outcome in Outcome:
            self.events.labels(outcome.value)
        self.process = ProcessMetrics() if MULTIPROCESS_DIR else None
        if self.process is None:
            for collector in (ProcessCollector, PlatformCollector, GCCollector):
                collector(registry=self.registry)

    def request(self, path: str, method: str, status: int, seconds: float) -> None:
        counter = self._request_counters.get((path, method, status))
        if counter is None:  # labels() validates and locks: done once per label set
            counter = self.requests.labels(path, method, str(status))
            self._request_counters[path, method, status] = counter
        counter.inc()
        histogram = self._latency_histograms.get(path)
        if histogram is None:
            histogram = self._latency_histograms[path] = self.latency.labels(path)
        histogram.observe(seconds)
        if self.process is not None:
            self.process.refresh()

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()

    def record_batch(self, result: BatchResult) -> None:
        for outcome in result.outcomes:
            self.events.labels(outcome.outcome.value).inc()
        self.merges.inc(result.merges)
        self.new_customers.inc(result.new_customers)
        self.rejected_links.inc(result.rejected_links)

    def record_store(self, counts: dict[str, int] | None) -> None:
        """The store's totals (``None``: the store did not answer)."""
        self.store_up.set(counts is not None)
        for name, key in STORE_COUNTS.items():
            if counts is not None and key in counts:
                self.store[name].set(counts[key])

    def render(self) -> bytes:
        """The exposition text: this process's values, or every process's."""
        if self.process is None:
            return generate_latest(self.registry)
        self.process.refresh(force=True)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """The process stops serving: its live gauges leave the sums."""
        if MULTIPROCESS_DIR:
            multiprocess.mark_process_dead(os.getpid())


@contextmanager
def shared_directory(workers: int) -> Iterator[None]:
    """Around ``idgraph serve``, before anything in the process counts: the configured
    directory is emptied, as ``prometheus_client`` asks before a start; with several
    workers and none configured, a temporary one is made for them and removed after."""
    configured = os.environ.get(DIRECTORY_VARIABLE)
    if configured:
        for kind in VALUE_FILES:  # only prometheus_client's files: the store may be near
            for stale in Path(configured).glob(f"{kind}_*.db"):
                stale.unlink()
    if configured or workers < 2:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="idgraph-metrics-") as directory:
        os.environ[DIRECTORY_VARIABLE] = directory  # read by the workers as they start
        try:
            yield
        finally:
            del os.environ[DIRECTORY_VARIABLE]


def shared_metrics() -> Metrics | None:
    """Metrics for a CLI command, when a directory shared with the server is configured."""
    return Metrics() if MULTIPROCESS_DIR else None


class ProcessMetrics:
    """The standard process metrics in multiprocess mode, kept from the standard
    collector's readings of this process (at most once a second)."""

    def __init__(self) -> None:
        self.reader = ProcessCollector(registry=None)
        self.cpu = Counter(
            "process_cpu_seconds",
            "CPU time of every idgraph process that wrote here, in seconds.",
            registry=None,
        )
        self.memory = Gauge(
            "process_resident_memory_bytes",
            "Resident memory of the live processes, in bytes.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.open_fds = Gauge(
            "process_open_fds",
            "Open file descriptors of the live processes.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.processes = Gauge(
            "idgraph_processes",
            "Live idgraph server processes.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.processes.set(1)
        self.cpu_seen = 0.0
        self.next_refresh = 0.0

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_refresh:
            return
        self.next_refresh = now + PROCESS_REFRESH_SECONDS
        readings = {m.name: m for m in self.reader.collect()}
        cpu = _value(readings.get("process_cpu_seconds"))
        if cpu is not None and cpu > self.cpu_seen:
            self.cpu.inc(cpu - self.cpu_seen)
            self.cpu_seen = cpu
        memory = _value(readings.get("process_resident_memory_bytes"))
        if memory is not None:
            self.memory.set(memory)
        fds = _value(readings.get("process_open_fds"))
        if fds is not None:
            self.open_fds.set(fds)


def _value(family: Metric | None) -> float | None:
    return family.samples[0].value if family is not None and family.samples else None
