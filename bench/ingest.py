"""Bulk-ingest benchmark: generate realistic events, ingest them, print a table.

    python bench/ingest.py --events 1000000            # embedded store in a temp dir
    python bench/ingest.py --store neo4j://localhost:7687 --replace --events 100000
    python bench/ingest.py --store bolt://127.0.0.1:7687 --replace --server-pid PID  # + its CPU
    python bench/ingest.py --big-merge 100000          # merge cost into a huge customer

Events come from idgraph.demo.DemoGenerator (repeat visitors, several identifiers per
event, shared devices, placeholders). Generation happens before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import tempfile
import time
from pathlib import Path

from idgraph.config import Settings, load_settings
from idgraph.demo import DemoGenerator
from idgraph.jsonl import ingest_file
from idgraph.service import IdentityGraph
from idgraph.store.factory import open_store
from idgraph.store.neo4j import Neo4jStore
from proc import cpu_seconds


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    line = f"+-{'-' * width}-+-{'-' * 16}-+"
    body = [f"| {k:<{width}} | {v:>16} |" for k, v in rows]
    return "\n".join([line, *body, line])


def server_cpu(pid: int | None) -> float:
    """CPU seconds the database server ``pid`` has used so far (0 without a pid)."""
    if not pid:
        return 0.0
    seconds = cpu_seconds(pid)
    if seconds is None:
        raise SystemExit(f"--server-pid {pid}: no such process in /proc")
    return seconds


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def bulk(
    settings: Settings,
    events: int,
    people: int,
    workdir: Path,
    *,
    replace: bool = False,
    server_pid: int | None = None,
) -> list[tuple[str, str]]:
    path = workdir / "events.jsonl"
    with path.open("w") as out:
        for event in DemoGenerator(people=people, seed=1).events(events):
            out.write(json.dumps(event) + "\n")
    store = await open_store(settings)
    if replace and isinstance(store, Neo4jStore):
        await store.clear()  # else a second run finds its events applied already
    graph = IdentityGraph(store, settings)
    server = server_cpu(server_pid)
    started, cpu, checker = time.perf_counter(), _cpu(), _cpu(resource.RUSAGE_CHILDREN)
    summary = await ingest_file(graph, path, settings.batch_size)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    checker = _cpu(resource.RUSAGE_CHILDREN) - checker
    server = server_cpu(server_pid) - server
    counts = await store.counts()
    await store.close()
    return [
        ("store", settings.store.split("://")[0]),
        ("events", f"{events:,}"),
        ("accepted", f"{summary.accepted:,}"),
        ("seconds", f"{seconds:,.1f}"),
        ("events/s", f"{events / seconds:,.0f}"),
        # On a shared machine wall time includes waiting for a core; CPU time does not.
        # A large file's lines are checked by a second process, on another core.
        ("CPU seconds", f"{cpu:,.1f}"),
        ("checker CPU seconds", f"{checker:,.1f}"),
        ("events per CPU s", f"{events / (cpu + checker):,.0f}"),
        # The database server's CPU during the ingest alone (not the --replace wipe).
        *([("server CPU seconds", f"{server:,.1f}")] if server_pid else []),
        *([("server CPU µs/event", f"{server / events * 1e6:,.0f}")] if server_pid else []),
        ("identity nodes", f"{counts['nodes']:,}"),
        ("customers", f"{counts['customers']:,}"),
        ("merges", f"{summary.merges:,}"),
        ("links refused", f"{summary.rejected_links:,}"),
        # The process's high-water mark (Linux reports KiB), not the RSS left at the end.
        ("peak RSS", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB"),
        # The process that checked the lines, if the file was large enough for one.
        (
            "checker peak RSS",
            f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10:,.0f} MiB",
        ),
    ]


async def big_merge(settings: Settings, size: int) -> list[tuple[str, str]]:
    """Time a merge of two small customers, then a merge into one of ``size`` nodes."""
    rules = dataclasses.replace(settings.rules, max_size=2 * size, default_limit=2 * size)
    settings = dataclasses.replace(settings, rules=rules)
    store = await open_store(settings)
    graph = IdentityGraph(store, settings)

    def ev(i: str, *keys: str) -> dict[str, object]:
        return {
            "id": i,
            "timestamp": "2026-01-01T00:00:00Z",
            "source": "bench",
            "identifiers": [{"kind": k.split(":")[0], "value": k.split(":")[1]} for k in keys],
        }

    batch = [
        ev(f"big-{i}", "email:big@example.com", *[f"cookie:b{i}-{j}" for j in range(49)])
        for i in range(size // 49 + 1)
    ]
    for i in range(0, len(batch), 200):
        await graph.ingest(batch[i : i + 200])
    await graph.ingest(
        [
            ev("s1", "email:s1@example.com", "cookie:s1"),
            ev("s2", "email:s2@example.com", "cookie:s2"),
        ]
    )
    timings = []
    for name, event in [
        ("small + small", ev("m1", "cookie:s1", "cookie:s2")),
        ("huge + small", ev("m2", "cookie:s1", "cookie:b0-0")),
    ]:
        started = time.perf_counter()
        result = await graph.ingest([event])
        timings.append((name, f"{(time.perf_counter() - started) * 1000:,.2f} ms"))
        assert result.merges == 1, result
    profile = await graph.resolve("email:big@example.com")
    await store.close()
    assert profile is not None
    return [("huge customer size", f"{profile.customer.size:,}"), *timings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=0, help="default: events / 10")
    parser.add_argument("--store", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument(
        "--replace", action="store_true", help="wipe the Neo4j database of --store first"
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        metavar="PID",
        help="also report the CPU time of this process (the database server) during ingest",
    )
    parser.add_argument(
        "--big-merge",
        type=int,
        metavar="SIZE",
        help="instead: time a merge into a customer of SIZE nodes",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(
            load_settings(),
            store=args.store or f"sqlite:///{tmp}/bench.db",
            batch_size=args.batch_size,
        )
        if args.big_merge:
            rows = asyncio.run(big_merge(settings, args.big_merge))
        else:
            people = args.people or max(args.events // 10, 10)
            rows = asyncio.run(
                bulk(
                    settings,
                    args.events,
                    people,
                    Path(tmp),
                    replace=args.replace,
                    server_pid=args.server_pid,
                )
            )
    print(table(rows))


if __name__ == "__main__":
    main()
