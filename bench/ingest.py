"""Bulk-ingest benchmark: generate realistic events, ingest them, print a table.

    python bench/ingest.py --events 1000000            # embedded store in a temp dir
    python bench/ingest.py --store neo4j://localhost:7687 --replace --events 100000
    python bench/ingest.py --store bolt://127.0.0.1:7687 --replace --server-pid PID  # + its CPU
    python bench/ingest.py --big-merge 100000          # merge cost into a huge customer
    python bench/ingest.py --events 260000 --messy     # ~270,000 lines as exports bring them

Events come from idgraph.demo.DemoGenerator (repeat visitors, several identifiers per
event, shared devices, placeholders); ``--messy`` spoils some of their lines (see
:func:`messy`). Generation happens before the clock starts. events/s counts the events
applied or found applied already, as ``idgraph ingest`` does; refused lines are not
events, but lines/s counts them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import resource
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from idgraph.config import Settings, load_settings
from idgraph.demo import DemoGenerator
from idgraph.jsonl import ingest_file
from idgraph.service import IdentityGraph
from idgraph.store.factory import open_store
from idgraph.store.neo4j import Neo4jStore
from machine import measure, speed_line
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


def messy(events: Iterable[dict[str, Any]], seed: int = 2) -> Iterator[str]:
    """The events' lines as real exports bring them: about 3% cut short (not JSON), 2%
    with a timestamp that is no time, 2% whose only identifier is a placeholder, 3% with
    a field the event format does not know (those are refused, each with its reason),
    3% sent twice (found applied already); emails in mixed case with spaces around them
    and phones formatted, which normalization undoes."""
    rng = random.Random(seed)
    for event in events:
        draw = rng.random()
        if draw < 0.03:
            whole = json.dumps(event)
            yield whole[: rng.randrange(5, len(whole) - 1)]
            continue
        if draw < 0.05:
            event["timestamp"] = rng.choice(["2026-13-01T00:00:00Z", "yesterday", ""])
        elif draw < 0.07:
            event["identifiers"] = [{"kind": "email", "value": "unknown"}]
            event.pop("device", None)
            event.pop("account", None)
        elif draw < 0.10:
            event["campaign"] = {"utm": "spring"}
        for identifier in event.get("identifiers", ()):
            value = identifier["value"]
            if identifier["kind"] == "email" and rng.random() < 0.3:
                identifier["value"] = f"  {value.upper()} "
            elif identifier["kind"] == "phone" and rng.random() < 0.3:
                identifier["value"] = f"{value[:2]} ({value[2:5]}) {value[5:8]}-{value[8:]}"
        line = json.dumps(event)
        yield line
        if rng.random() < 0.03:
            yield line


async def bulk(
    settings: Settings,
    events: int,
    people: int,
    workdir: Path,
    *,
    spoiled: bool = False,
    replace: bool = False,
    server_pid: int | None = None,
) -> list[tuple[str, str]]:
    path = workdir / "events.jsonl"
    generated = DemoGenerator(people=people, seed=1).events(events)
    lines = 0
    with path.open("w") as out:
        for line in messy(generated) if spoiled else map(json.dumps, generated):
            out.write(line + "\n")
            lines += 1
    store = await open_store(settings)
    if replace and isinstance(store, Neo4jStore):
        await store.clear()  # else a second run finds its events applied already
    graph = IdentityGraph(store, settings)
    server = server_cpu(server_pid)
    started, cpu, checker = time.perf_counter(), _cpu(), _cpu(resource.RUSAGE_CHILDREN)
    summary = await ingest_file(graph, path, settings.batch_size_for())
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    checker = _cpu(resource.RUSAGE_CHILDREN) - checker
    server = server_cpu(server_pid) - server
    counts = await store.counts()
    await store.close()
    applied = summary.accepted + summary.duplicates
    return [
        ("store", settings.store.split("://")[0]),
        ("lines", f"{lines:,}"),
        ("accepted", f"{summary.accepted:,}"),
        ("duplicate", f"{summary.duplicates:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("seconds", f"{seconds:,.1f}"),
        ("events/s", f"{applied / seconds:,.0f}"),
        ("lines/s", f"{lines / seconds:,.0f}"),
        # On a shared machine wall time includes waiting for a core; CPU time does not.
        # A large file's lines are checked by a second process, on another core.
        ("CPU seconds", f"{cpu:,.1f}"),
        ("checker CPU seconds", f"{checker:,.1f}"),
        ("events per CPU s", f"{applied / (cpu + checker):,.0f}"),
        # The database server's CPU during the ingest alone (not the --replace wipe).
        *([("server CPU seconds", f"{server:,.1f}")] if server_pid else []),
        *([("server CPU µs/event", f"{server / applied * 1e6:,.0f}")] if server_pid else []),
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
    parser.add_argument("--batch-size", type=int, help="default: the store's (batch_size)")
    parser.add_argument("--messy", action="store_true", help="spoil some lines (see messy())")
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
    before = measure()
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
                    spoiled=args.messy,
                    replace=args.replace,
                    server_pid=args.server_pid,
                )
            )
    print(table(rows))
    print(speed_line(before, measure()))


if __name__ == "__main__":
    main()
