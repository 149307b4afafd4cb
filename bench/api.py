"""GraphQL API benchmark: one uvicorn worker on loopback, driven from another process.

    python bench/api.py                          # 200,000 events, 200 req/s for 20 s
    python bench/api.py --events 1000000 --rate 200 --duration 20

1. Generates events with idgraph.demo.DemoGenerator and loads them with
   ``idgraph ingest`` into a fresh embedded store (or ``--store``); makes a reader key
   with ``idgraph keys create``, which every request sends (purpose ``support``).
2. Starts ``uvicorn idgraph.api.app:app_from_env --factory`` with one worker on
   127.0.0.1 (never another interface), access log off.
3. From a separate process, for each query: an open-loop run at a fixed offered load
   (requests start on schedule whatever the earlier ones do, sent within microseconds of
   it; latency counts from the scheduled start), then a closed-loop run with
   ``--concurrency`` connections to measure capacity. Every loop is bounded in count and
   time. ``--concurrency 1 --closed-only`` measures sequential latency (the closed loop's
   p50 and p99 columns).

The server's CPU time per request of the closed loop (from ``/proc``, on Linux) is the
figure that depends least on what else the machine runs; the ratio of the two queries'
capacities is the other. The server's full (generation-2) garbage collections during a
query's two loops, and the objects they freed per request, come from its ``/metrics``
(read with an admin key): objects that requests leave in reference cycles are freed only
there, and a full collection pauses every request in flight (the open loop's tail).

Queries: ``{ __typename }`` (the framework's floor) and ``resolve`` of a random known
email with its identifiers, traits and 20 interactions.

``--store`` with ``--loaded`` serves a store loaded before (by a run with the same
``--events`` and ``--people``) without loading it again, e.g. to compare two versions
of the code on the same data.

Beside the open loops, ``--scrape-every S`` reads ``/metrics`` every S seconds, as a
Prometheus scraper does, and ``--large-customer N`` gives one customer N interactions
(ingested before the server starts) and resolves it once a second: work that used to
hold up every other request while it ran. Their own times are printed below the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from idgraph.demo import DemoGenerator
from machine import measure, speed_line
from proc import cpu_seconds

HOST = "127.0.0.1"  # loopback only
REQUEST_TIMEOUT = 5.0
SCRAPE_TIMEOUT = 60.0  # /metrics counts the store's tables: seconds when the file is cold
POOL_SIZE = 64
STARTUP_SECONDS = 60
WARM_UP = 50  # requests before each loop
SPIN_SECONDS = 0.002  # the last stretch before an open-loop send, waited by yielding
PURPOSE = "support"
TRIVIAL = "{ __typename }"
RESOLVE = (
    "query($id: IdentifierInput!) { resolve(identifier: $id) { id size "
    "identifiers { edges { node { kind value } } } traits { edges { node { name value } } } "
    "interactions(first: 20) { edges { node { type at channel } } } } }"
)
LARGE_CUSTOMER = "large-customer@example.com"  # see --large-customer


@dataclass
class Run:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    late: list[float] = field(default_factory=list)  # open loop: how late each was sent
    beside: dict[str, list[float]] = field(default_factory=dict)  # side load: durations

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p)


@dataclass(frozen=True)
class SideLoad:
    """What runs beside an open loop (see the module's docstring)."""

    operator_key: str
    scrape_every: float = 0.0
    large_customer: bool = False


def percentile(seconds: list[float], p: float) -> float:
    """The ``p``-th percentile of durations in seconds, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


class Connection:
    """A minimal keep-alive HTTP/1.1 client: far less CPU per request than a full client,
    so the driver measures the server rather than itself."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.headers = f"Authorization: Bearer {key}\r\nX-Purpose: {PURPOSE}\r\n".encode()

    @classmethod
    async def open(cls, port: int, key: str) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port), key)

    async def post(self, payload: bytes) -> bool:
        """POST /graphql; True when the answer is 200 without GraphQL errors."""
        self.writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
            b"%bContent-Length: %d\r\n\r\n%b" % (HOST.encode(), self.headers, len(payload), payload)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ConnectionError("a response without Content-Length")
        answer = await self.reader.readexactly(length)
        return head.startswith(b"HTTP/1.1 200") and b'"errors"' not in answer

    def close(self) -> None:
        self.writer.close()


class Payloads:
    """Request bodies: the trivial query, or resolve of a random known email."""

    def __init__(self, query: str, identifiers: list[str], seed: int) -> None:
        self.query = query
        self.identifiers = identifiers
        self.rng = random.Random(seed)

    def next(self) -> bytes:
        body: dict[str, Any] = {"query": self.query}
        if self.query != TRIVIAL:
            email = self.rng.choice(self.identifiers)
            body["variables"] = {"id": {"kind": "email", "value": email}}
        return json.dumps(body).encode()


async def timed(connection: Connection, payload: bytes) -> bool:
    try:
        return await asyncio.wait_for(connection.post(payload), REQUEST_TIMEOUT)
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return False


async def on_time(moment: float) -> None:
    """Return at ``moment`` (a ``perf_counter`` time), to within some microseconds.

    asyncio's timers fire up to a millisecond late (epoll waits whole milliseconds):
    ~0.6 ms on average, which latency counted from the schedule would charge to the
    server. So the last ``SPIN_SECONDS`` are waited by yielding to the loop, which
    meanwhile still reads the replies to earlier requests."""
    await asyncio.sleep(max(0.0, moment - SPIN_SECONDS - time.perf_counter()))
    while time.perf_counter() < moment:  # noqa: ASYNC110 (an Event waits on a timer too)
        await asyncio.sleep(0)


async def open_loop(
    port: int,
    key: str,
    query: str,
    identifiers: list[str],
    rate: float,
    duration: float,
    side: SideLoad | None = None,
) -> Run:
    """``rate * duration`` requests, each started at its scheduled time on a free
    connection of a pool (latency counts from the schedule, so queueing shows), with
    ``side`` running beside them."""
    payloads = Payloads(query, identifiers, 1)
    total = int(rate * duration)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(POOL_SIZE):
        pool.put_nowait(await Connection.open(port, key))
    for _ in range(WARM_UP):  # warm up the server's caches
        connection = await pool.get()
        await timed(connection, payloads.next())
        pool.put_nowait(connection)
    latencies: list[float] = []
    late: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        await on_time(scheduled)
        late.append(time.perf_counter() - scheduled)
        connection = await pool.get()  # none free: the server is behind, and that counts
        good = await timed(connection, payloads.next())
        if good:
            pool.put_nowait(connection)
        else:
            errors += 1
            connection.close()
            pool.put_nowait(await Connection.open(port, key))
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter() + 0.1
    beside: dict[str, list[float]] = {}
    side_tasks = [] if side is None else beside_open_loop(port, key, side, start + duration, beside)
    tasks = [asyncio.create_task(one(start + i / rate)) for i in range(total)]
    await asyncio.wait(tasks, timeout=duration + REQUEST_TIMEOUT + 5)
    seconds = time.perf_counter() - start
    for task in tasks + side_tasks:
        task.cancel()
    while not pool.empty():
        pool.get_nowait().close()
    return Run(len(latencies), errors + total - len(latencies), seconds, latencies, late, beside)


def beside_open_loop(
    port: int, key: str, side: SideLoad, until: float, durations: dict[str, list[float]]
) -> list[asyncio.Task[None]]:
    """Start ``side``'s tasks; each adds the duration of its requests to ``durations``."""

    async def every(name: str, seconds: float, request: Any) -> None:
        found = durations.setdefault(name, [])
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as client:
            while time.perf_counter() + seconds < until:
                await asyncio.sleep(seconds)
                sent = time.perf_counter()
                try:
                    (await request(client)).raise_for_status()
                except httpx.HTTPError as exc:  # shown instead of its durations
                    durations[f"{name} (failed: {exc!r})"] = durations.pop(name)
                    return
                found.append(time.perf_counter() - sent)

    tasks = []
    if side.scrape_every:
        operator = {"Authorization": f"Bearer {side.operator_key}"}

        async def scrape(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get("/metrics", headers=operator, timeout=SCRAPE_TIMEOUT)

        tasks.append(asyncio.create_task(every("/metrics", side.scrape_every, scrape)))
    if side.large_customer:
        payload = Payloads(RESOLVE, [LARGE_CUSTOMER], 0).next()
        reader = {
            "Authorization": f"Bearer {key}",
            "X-Purpose": PURPOSE,
            "Content-Type": "application/json",
        }

        async def resolve(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post("/graphql", content=payload, headers=reader, timeout=60)

        tasks.append(asyncio.create_task(every("resolve of the large customer", 1.0, resolve)))
    return tasks


async def closed_loop(
    port: int, key: str, query: str, identifiers: list[str], concurrency: int, duration: float
) -> Run:
    """``concurrency`` connections, each sending its next request when the last returns
    (after ``WARM_UP`` requests that warm up the server's caches)."""
    payloads = Payloads(query, identifiers, 2)
    warm = await Connection.open(port, key)
    for _ in range(WARM_UP):
        await timed(warm, payloads.next())
    warm.close()
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    deadline = start + duration

    async def worker() -> None:
        nonlocal errors
        connection = await Connection.open(port, key)
        for _ in range(1_000_000):  # bounded even if the clock misbehaves
            if time.perf_counter() >= deadline:
                break
            sent = time.perf_counter()
            if not await timed(connection, payloads.next()):
                errors += 1
                connection.close()
                connection = await Connection.open(port, key)
            latencies.append(time.perf_counter() - sent)
        connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(len(latencies), errors, time.perf_counter() - start, latencies)


def drive(
    mode: str,
    port: int,
    key: str,
    query: str,
    identifiers: list[str],
    load: float,
    seconds: float,
    side: SideLoad | None = None,
) -> Run:
    """Runs in the driver process."""
    if mode == "open":
        return asyncio.run(open_loop(port, key, query, identifiers, load, seconds, side))
    return asyncio.run(closed_loop(port, key, query, identifiers, int(load), seconds))


def full_collections(port: int, key: str) -> tuple[float, float] | None:
    """How many full (generation-2) garbage collections the server has run, and the
    objects they freed, from its ``/metrics``; None when it does not say (in
    ``prometheus_client``'s multiprocess mode)."""
    response = httpx.get(
        f"http://{HOST}:{port}/metrics",
        headers={"Authorization": f"Bearer {key}"},
        timeout=SCRAPE_TIMEOUT,
    )
    response.raise_for_status()
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        name, _, value = line.partition('{generation="2"} ')
        if name in ("python_gc_collections_total", "python_gc_objects_collected_total"):
            found[name] = float(value)
    if len(found) < 2:
        return None
    return found["python_gc_collections_total"], found["python_gc_objects_collected_total"]


def generate(path: Path, events: int, people: int, sample: int) -> list[str]:
    """Write the events; return a sample of emails they carry."""
    emails: set[str] = set()
    with path.open("w") as out:
        for event in DemoGenerator(people=people, seed=1).events(events):
            for identifier in event.get("identifiers", ()):
                if identifier["kind"] == "email" and identifier["value"] != "unknown":
                    emails.add(identifier["value"])
            out.write(json.dumps(event) + "\n")
    return random.Random(3).sample(sorted(emails), min(sample, len(emails)))


def write_large_customer(path: Path, interactions: int) -> None:
    """One customer's page views, a minute apart (event ids repeat from run to run, so
    a store that has them already takes them as duplicates)."""
    first = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w") as out:
        for i in range(interactions):
            event = {
                "id": f"large-customer-{i}",
                "timestamp": (first + timedelta(minutes=i)).isoformat(),
                "source": "web",
                "identifiers": [{"kind": "email", "value": LARGE_CUSTOMER}],
                "interaction": {"type": "page_view", "channel": "web"},
            }
            out.write(json.dumps(event) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def start_server(store: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "idgraph.api.app:app_from_env", "--factory",
        "--host", HOST, "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(
            command, env={**os.environ, "IDGRAPH_STORE": store}, stdout=out, stderr=out
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit(f"the server did not start:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line, fmt(header), line, *map(fmt, rows), line])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to pre-load")
    parser.add_argument("--people", type=int, default=0, help="default: events / 10")
    parser.add_argument("--store", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument(
        "--loaded", action="store_true", help="--store holds these events already: no load"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="offered load, req/s")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per open run")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument(
        "--closed-only", action="store_true", help="no open-loop run (e.g. sequential latency)"
    )
    parser.add_argument(
        "--scrape-every", type=float, default=0.0, help="beside the open loops: GET /metrics"
    )
    parser.add_argument(
        "--large-customer",
        type=int,
        default=0,
        help="beside the open loops: resolve a customer of this many interactions each second",
    )
    args = parser.parse_args()
    if not (
        0 < args.rate <= 5000
        and 0 < args.duration <= 300
        and 0 < args.capacity_seconds <= 300
        and 0 < args.concurrency <= 256
        and (args.scrape_every == 0 or 0.1 <= args.scrape_every <= 300)
        and 0 <= args.large_customer <= 1_000_000
    ):
        parser.error(
            "keep the runs bounded: rate ≤ 5000/s, duration ≤ 300 s, concurrency ≤ 256, "
            "scrapes 0.1–300 s apart, a large customer of ≤ 1,000,000 interactions"
        )
    if args.loaded and not args.store:
        parser.error("--loaded needs --store")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = args.store or f"sqlite:///{workdir / 'bench.db'}"
        events = workdir / "events.jsonl"
        emails = generate(events, args.events, args.people or max(args.events // 10, 10), 5000)
        if not args.loaded:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "idgraph.cli", "--store", store, "ingest", str(events),
                 "--quiet", "--no-progress"],
                check=False,
            )  # fmt: skip
            print(f"loaded {args.events:,} events in {time.perf_counter() - started:,.1f} s")
        if args.large_customer:
            write_large_customer(workdir / "large.jsonl", args.large_customer)
            subprocess.run(
                [sys.executable, "-m", "idgraph.cli", "--store", store, "ingest",
                 str(workdir / "large.jsonl"), "--quiet", "--no-progress"],
                check=True,
            )  # fmt: skip
        key, operator = (
            subprocess.run(
                [sys.executable, "-m", "idgraph.cli", "--store", store, "keys", "create",
                 f"bench-{role}-{os.getpid()}", "--role", role, "--purpose", PURPOSE],
                check=True, capture_output=True, text=True,
            ).stdout.strip()
            for role in ("reader", "admin")
        )  # fmt: skip
        side = (
            SideLoad(operator, args.scrape_every, args.large_customer > 0)
            if args.scrape_every or args.large_customer
            else None
        )
        before = measure()
        port = free_port()
        server = start_server(store, port, workdir / "server.log")
        rows = []
        beside: list[str] = []
        capacity = {}
        try:
            with ProcessPoolExecutor(max_workers=1) as driver:
                for name, query in [
                    ("{ __typename }", TRIVIAL),
                    ("resolve + 20 interactions", RESOLVE),
                ]:
                    collections_before = full_collections(port, operator)
                    fixed = (
                        None
                        if args.closed_only
                        else driver.submit(
                            drive,
                            "open",
                            port,
                            key,
                            query,
                            emails,
                            args.rate,
                            args.duration,
                            side,
                        ).result()
                    )
                    for what, durations in (fixed.beside if fixed else {}).items():
                        beside.append(
                            f"beside the {name} open loop, {what}: {len(durations)} requests, "
                            f"mean {sum(durations) / max(len(durations), 1) * 1000:,.1f} ms, "
                            f"longest {max(durations, default=0) * 1000:,.1f} ms"
                        )
                    cpu_before = cpu_seconds(server.pid)
                    top = driver.submit(
                        drive,
                        "closed",
                        port,
                        key,
                        query,
                        emails,
                        args.concurrency,
                        args.capacity_seconds,
                    ).result()
                    cpu_after = cpu_seconds(server.pid)
                    collections_after = full_collections(port, operator)
                    capacity[name] = top.requests / top.seconds
                    requests = 0 if fixed is None else fixed.requests + WARM_UP
                    requests += top.requests + WARM_UP
                    collections = (
                        ["-", "-"]
                        if collections_before is None or collections_after is None
                        else [
                            f"{collections_after[0] - collections_before[0]:.0f}",
                            f"{(collections_after[1] - collections_before[1]) / requests:.1f}",
                        ]
                    )
                    cpu = (
                        f"{(cpu_after - cpu_before) / top.requests * 1000:.2f}"
                        if cpu_before is not None and cpu_after is not None and top.requests
                        else "-"
                    )
                    rows.append(
                        [
                            name,
                            *(
                                [
                                    f"{args.rate:,.0f}",
                                    f"{fixed.requests / fixed.seconds:,.0f}",
                                    f"{fixed.percentile(50):.2f}",
                                    f"{fixed.percentile(95):.2f}",
                                    f"{fixed.percentile(99):.2f}",
                                    f"{percentile(fixed.late, 99):.2f}",
                                ]
                                if fixed
                                else ["-"] * 6
                            ),
                            str((fixed.errors if fixed else 0) + top.errors),
                            f"{capacity[name]:,.0f}",
                            f"{top.percentile(50):.2f}",
                            f"{top.percentile(99):.2f}",
                            cpu,
                            *collections,
                        ]
                    )
        finally:
            stop(server)
    after = measure()
    header = [
        "query", "offered/s", "served/s", "p50 ms", "p95 ms", "p99 ms", "sent late p99", "errors",
        "max req/s", "closed p50", "closed p99", "CPU ms/req", "full GCs", "GC freed/req",
    ]  # fmt: skip
    print(f"store: {store.split('://')[0]}, {args.events:,} events; one uvicorn worker on {HOST}")
    opened = "" if args.closed_only else f"{args.rate:,.0f} req/s for {args.duration:g} s; "
    print(
        f"open loop: {opened or 'none; '}closed loop: {args.concurrency} connections "
        f"for {args.capacity_seconds:g} s"
    )
    print(table(header, rows))
    for line in beside:
        print(line)
    print(speed_line(before, after))
    trivial, resolve = capacity.values()
    print(f"resolve capacity = {resolve / trivial:.0%} of the trivial query's (target ≥ 50%)")
    print(
        "sent late p99: how late the driver itself sent its requests (counted in the "
        "latencies, which run from the schedule); more than a fraction of a ms means the "
        "machine kept the driver from sending on time"
    )
    print(
        "full GCs: the server's full garbage collections during both loops; GC freed/req: "
        "the objects they freed per request (what requests leave in reference cycles)"
    )


if __name__ == "__main__":
    main()
