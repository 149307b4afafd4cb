"""Does a hidden identity node answer as fast as an unknown one? In-process timing.

    python bench/hidden_vs_unknown.py                # 3,000 calls of each, per operation
    python bench/hidden_vs_unknown.py --calls 10000

A steward key under ``marketing`` asks ``node``, ``explainLink``, ``link`` and ``unlink``
about a shown phone and either an email that consent hides (its own denial) or an
email that is not in the graph, over HTTP to the ASGI app in this process (httpx's
ASGI transport: no network noise), on a fresh embedded store with some bulk around.
Calls come in pairs (hidden, unknown) in random order; the table gives each side's
median and 90th percentile in microseconds, the difference of the medians, and the
median of the paired differences (which cancels drift from other load on the machine).
``node``, ``link`` and ``unlink`` must answer byte for byte the same on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

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


async def main(calls: int, bulk: int) -> None:
    os.environ.setdefault("IDGRAPH_SECRET", "bench-only-secret-" + "0" * 32)
    with tempfile.TemporaryDirectory() as tmp:
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
        print(f"{calls:,} calls of each side, medians and p90 in µs")
        print(f"{'operation':<12} {'hidden':>16} {'unknown':>16} {'Δ median':>9} {'Δ paired':>9}")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:

                async def call(query: str, variables: dict[str, object]) -> tuple[float, str]:
                    body = {"query": query, "variables": variables}
                    start = time.perf_counter()
                    response = await client.post("/graphql", json=body, headers=headers)
                    return (time.perf_counter() - start) * 1e6, response.text

                for name, (query, hidden, unknown) in cases.items():
                    for _ in range(50):  # warm up
                        await call(query, hidden)
                    times: dict[str, list[float]] = {"hidden": [], "unknown": []}
                    answers = set()
                    for _ in range(calls):  # pairs, in random order: drift cancels out
                        sides = [("hidden", hidden), ("unknown", unknown)]
                        random.shuffle(sides)
                        for side, variables in sides:
                            elapsed, text = await call(query, variables)
                            times[side].append(elapsed)
                            answers.add(text if name != "explainLink" else side)
                    if name != "explainLink":  # it echoes its arguments; the rest must match
                        assert len(answers) == 1, answers
                    h, u = (statistics.median(times[s]) for s in ("hidden", "unknown"))
                    hp, up = (statistics.quantiles(times[s], n=10)[-1] for s in times)
                    paired = statistics.median(
                        a - b for a, b in zip(times["hidden"], times["unknown"], strict=True)
                    )
                    print(
                        f"{name:<12} {h:>8.0f} ({hp:>5.0f}) {u:>8.0f} ({up:>5.0f}) "
                        f"{h - u:>+9.0f} {paired:>+9.0f}"
                    )
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=20000, help="other customers in the store")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.bulk))
