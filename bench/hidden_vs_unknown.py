"""Does a hidden identity node answer as fast as an unknown one? In-process timing.

    python bench/hidden_vs_unknown.py                # 3,000 calls of each, per operation
    python bench/hidden_vs_unknown.py --calls 10000 --dir /dev/shm

A steward key under ``marketing`` asks ``node``, ``explainLink``, ``link`` and ``unlink``
about a shown phone and either an email that consent hides (its own denial) or an
email that is not in the graph, over HTTP to the ASGI app in this process (httpx's
ASGI transport: no network noise), on a fresh embedded store with some bulk around.
Calls come in pairs (hidden, unknown) in random order; the table gives each side's
median in microseconds and the median of the paired differences (which cancels drift),
in CPU time of this process (what the code path costs, whatever else runs on the
machine) and in wall time.
``node``, ``link`` and ``unlink`` must answer byte for byte the same on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx

from idgraph.api.app import create_app
from idgraph.api.tokens import Tokens
from idgraph.config import Settings
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore

HIDDEN, UNKNOWN, PHONE = "hidden@example.org", "unknown@example.org", "+16502530000"
NODE = "query($id: ID!) { node(id: $id) { id } }"
EXPLAIN = """query($a: IdentifierInput!, $b: IdentifierInput!) {
  explainLink(a: $a, b: $b) { verdict reason customerA { id } customerB { id } } }"""
LINK = """mutation($a: IdentifierInput!, $b: IdentifierInput!) {
  link(a: $a, b: $b) { userErrors { code message field } } }"""
UNLINK = """mutation($a: IdentifierInput!, $b: IdentifierInput!) {
  unlink(a: $a, b: $b) { removedLinks { a b } userErrors { code message field } } }"""


class Sample(NamedTuple):
    wall: float
    cpu: float


def report(hidden: list[Sample], unknown: list[Sample]) -> str:
    """Medians of each side and of the paired differences, CPU time then wall time."""
    columns = []
    for field, width in (("cpu", 10), ("wall", 11)):
        h = [getattr(s, field) for s in hidden]
        u = [getattr(s, field) for s in unknown]
        paired = statistics.median(a - b for a, b in zip(h, u, strict=True))
        columns.append(
            f"{statistics.median(h):>{width}.0f} {statistics.median(u):>8.0f} {paired:>+8.0f}"
        )
    return "  ".join(columns)


def event(n: int, *identifiers: tuple[str, str], **extra: object) -> dict[str, object]:
    return {
        "id": f"b{n}",
        "timestamp": f"2026-03-01T00:00:{n % 60:02d}Z",
        "source": "bench",
        "identifiers": [{"kind": k, "value": v} for k, v in identifiers],
        **extra,
    }


async def seed(graph: IdentityGraph, bulk: int) -> None:
    await graph.ingest(
        [event(n, ("email", f"p{n}@example.org"), ("cookie", f"c{n}")) for n in range(bulk)]
    )
    deny = {"purpose": "marketing", "status": "denied"}
    grant = {"purpose": "marketing", "status": "granted"}
    await graph.ingest([event(bulk + 1, ("phone", PHONE), ("email", HIDDEN))])
    await graph.ingest([event(bulk + 2, ("email", HIDDEN), consent=deny)])
    await graph.ingest([event(bulk + 3, ("phone", PHONE), consent=grant)])


async def main(calls: int, bulk: int, directory: str | None) -> None:
    os.environ.setdefault("IDGRAPH_SECRET", "bench-only-secret-" + "0" * 32)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        settings = Settings()
        await seed(IdentityGraph(store, settings), bulk)
        _, secret = await KeyRing(store, settings).create("bench", "steward", ["marketing"])
        tokens = Tokens.from_secret(settings.secret())
        phone = {"kind": "phone", "value": PHONE}

        def pair(email: str) -> dict[str, object]:
            return {"a": phone, "b": {"kind": "email", "value": email}}

        cases: dict[str, tuple[str, dict[str, object], dict[str, object]]] = {
            "node": (
                NODE,
                {"id": tokens.node_id(f"email:{HIDDEN}")},
                {"id": tokens.node_id(f"email:{UNKNOWN}")},
            ),
            "explainLink": (EXPLAIN, pair(HIDDEN), pair(UNKNOWN)),
            "link": (LINK, pair(HIDDEN), pair(UNKNOWN)),
            "unlink": (UNLINK, pair(HIDDEN), pair(UNKNOWN)),
        }
        app = create_app(settings, store)
        headers = {"Authorization": f"Bearer {secret}", "X-Purpose": "marketing"}
        print(f"{calls:,} pairs of calls; medians in µs (CPU time of this process, wall time)")
        print(
            f"{'operation':<12} {'cpu hidden':>10} {'unknown':>8} {'Δ paired':>8}"
            f"  {'wall hidden':>11} {'unknown':>8} {'Δ paired':>8}"
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:

                async def call(query: str, variables: dict[str, object]) -> tuple[Sample, str]:
                    body = {"query": query, "variables": variables}
                    wall, cpu = time.perf_counter(), time.process_time()
                    response = await client.post("/graphql", json=body, headers=headers)
                    sample = Sample(
                        (time.perf_counter() - wall) * 1e6, (time.process_time() - cpu) * 1e6
                    )
                    return sample, response.text

                gc.collect()
                gc.freeze()  # the seeding's objects: collections then scan only the calls'
                for name, (query, hidden, unknown) in cases.items():
                    for _ in range(50):  # warm up
                        await call(query, hidden)
                    samples: dict[str, list[Sample]] = {"hidden": [], "unknown": []}
                    answers = set()
                    for _ in range(calls):  # pairs, in random order: drift cancels out
                        sides = [("hidden", hidden), ("unknown", unknown)]
                        random.shuffle(sides)
                        for side, variables in sides:
                            sample, text = await call(query, variables)
                            samples[side].append(sample)
                            answers.add(text if name != "explainLink" else side)
                    if name != "explainLink":  # it echoes its arguments; the rest must match
                        assert len(answers) == 1, answers
                    print(f"{name:<12} " + report(samples["hidden"], samples["unknown"]))
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=20000, help="other customers in the store")
    parser.add_argument(
        "--dir", help="where the store lives (/dev/shm takes disk latency out of the figures)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.bulk, args.dir))
