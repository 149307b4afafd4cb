"""The garbage collector's policy in a real ``idgraph serve`` (one process: the way
that used to skip it), seen through the process's own ``/metrics``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import ALICE, RESOLVE_PROFILE
from tests.api.live import live_server
from tests.api.scrape import samples, value

REQUESTS = 300


def young_collections(client: httpx.Client) -> float:
    parsed = samples(client.get("/metrics").text)
    collections = value(parsed, "python_gc_collections_total", generation="0")
    assert collections is not None
    return collections


def test_requests_rarely_run_a_collection(tmp_path: Path) -> None:
    """Under Python's default (a young collection per 700 allocations not yet freed),
    about one ``resolve`` of the demo's Alice in 40 ran one, a pause of up to a
    millisecond; served, a few hundred requests run none, or one."""
    with (
        live_server(tmp_path) as server,
        httpx.Client(base_url=server.base, headers=server.headers()) as client,
    ):
        before = young_collections(client)
        for _ in range(REQUESTS):
            answer = client.post(
                "/graphql", json={"query": RESOLVE_PROFILE, "variables": {"id": ALICE}}
            ).json()
            assert answer["data"]["resolve"]["size"] > 0, answer
        ran = young_collections(client) - before
    assert ran <= 1, f"{ran:.0f} young collections for {REQUESTS} requests"
