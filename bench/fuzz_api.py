"""Fuzz a live API: many generated requests against ``idgraph serve --demo``.

    idgraph serve --demo &                     # prints export IDGRAPH_ADMIN_KEY=…
    python bench/fuzz_api.py --url http://127.0.0.1:8000 --key "$IDGRAPH_ADMIN_KEY" -n 3000

Sends queries and mutations generated from the schema (hypothesis-graphql) and bodies
that are not GraphQL requests (see ``tests/api/fuzzing.py``), one at a time, under the
purpose ``support``, then prints a table: requests sent, by HTTP status, 5xx, INTERNAL
and TIMEOUT errors (on a demo, a request that runs to the time limit is stuck), bodies
that are not JSON, latency (median, 99th percentile, slowest), and the
three slowest requests whole (to send again). With an admin key the mutations change
the store: point it at a throwaway demo. Only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.api.fuzzing
from tests.api.fuzzing import REQUESTS, problems

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SLOWEST = 3  # requests printed whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key (admin for mutations)")
    parser.add_argument("-n", "--requests", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("only a loopback URL: the fuzzer writes to the store")

    statuses: Counter[int] = Counter()
    found: Counter[str] = Counter()
    examples: dict[str, bytes] = {}
    slowest: list[tuple[float, bytes]] = []  # a heap of the three slowest
    latencies: list[float] = []
    headers = {
        "Authorization": f"Bearer {args.key}",
        "X-Purpose": "support",
        "content-type": "application/json",
    }
    with httpx.Client(base_url=args.url, timeout=args.timeout) as client:

        @settings(
            max_examples=args.requests,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(body=REQUESTS)
        def send(body: bytes) -> None:
            start = time.perf_counter()
            response = client.post("/graphql", content=body, headers=headers)
            elapsed = time.perf_counter() - start
            statuses[response.status_code] += 1
            latencies.append(elapsed)
            heapq.heappush(slowest, (elapsed, body))
            if len(slowest) > SLOWEST:
                heapq.heappop(slowest)
            for problem in problems(response.status_code, response.content):
                found[problem.split()[0]] += 1
                examples.setdefault(problem, body)

        send()

    sent = sum(statuses.values())
    rows = [("requests sent", f"{sent:,}")]
    rows += [(f"HTTP {status}", f"{count:,}") for status, count in sorted(statuses.items())]
    rows += [
        ("5xx", f"{sum(c for s, c in statuses.items() if s >= 500):,}"),
        ("INTERNAL errors", f"{found['INTERNAL']:,}"),
        ("TIMEOUT errors", f"{found['TIMEOUT']:,}"),
        ("bodies not JSON", f"{found['not']:,}"),
        ("median", f"{statistics.median(latencies) * 1000:,.1f} ms"),
        ("99th percentile", f"{statistics.quantiles(latencies, n=100)[98] * 1000:,.1f} ms"),
        ("slowest", f"{max(slowest)[0] * 1000:,.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'':{width}} | {'':>10} |\n|{'-' * (width + 2)}|{'-' * 12}|")
    for name, value in rows:
        print(f"| {name:{width}} | {value:>10} |")
    for elapsed, body in sorted(slowest, reverse=True):
        print(f"\n{elapsed * 1000:,.1f} ms: {body!r}")
    for problem, body in examples.items():
        print(f"\n{problem}: {body[:500]!r}")
    return 1 if examples else 0


if __name__ == "__main__":
    sys.exit(main())
