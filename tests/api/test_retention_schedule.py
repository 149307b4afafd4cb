"""``[retention] schedule``: ``idgraph serve`` purges in the background of a running app,
while it serves requests."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from idgraph.config import RetentionSettings, Settings
from idgraph.domain.access import Operation
from idgraph.retention import SCHEDULER
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import open_api
from tests.api.live import live_server
from tests.events import event

OLD = "2020-01-01T00:00:00Z"
# Waited for at most this many polls of 50 ms (a bound, not a measured time).
POLLS = 400
RESOLVE = '{ resolve(identifier: {kind: "email", value: "a@x.com"}) { id } }'


async def _purged(store: Store) -> bool:
    entries = await store.audit_log(customer_id=None, limit=50)
    return any(e.operation == Operation.PURGE for e in entries)


async def test_a_scheduled_purge_runs_while_the_app_serves(
    store: Store, settings: Settings
) -> None:
    graph = IdentityGraph(store, settings)
    await graph.ingest([event("email:a@x.com", at=OLD, interaction={"type": "page_view"})])
    retention = RetentionSettings(interactions_days=30, schedule="0.05s")  # type: ignore[arg-type]
    settings = dataclasses.replace(settings, retention=retention)

    async for api in open_api(settings, store):
        for _ in range(POLLS):
            if await _purged(store):
                break
            await asyncio.sleep(0.05)
        data = await api.data(RESOLVE)

    assert data["resolve"] is not None  # the graph is untouched, and the API answers
    assert (await store.counts())["interactions"] == 0
    entries = await store.audit_log(customer_id=None, limit=50)
    purge = next(e for e in entries if e.operation == Operation.PURGE)
    assert purge.actor == SCHEDULER
    assert purge.detail.startswith("purge interactions=")


async def test_without_a_schedule_the_app_purges_nothing(store: Store, settings: Settings) -> None:
    graph = IdentityGraph(store, settings)
    await graph.ingest([event("email:a@x.com", at=OLD, interaction={"type": "page_view"})])
    settings = dataclasses.replace(settings, retention=RetentionSettings(interactions_days=30))

    async for api in open_api(settings, store):
        await api.data(RESOLVE)

    assert (await store.counts())["interactions"] == 1
    assert not await _purged(store)


def test_idgraph_serve_logs_each_scheduled_purge(tmp_path: Path) -> None:
    config = tmp_path / "idgraph.toml"
    config.write_text('[retention]\ninteractions_days = 30\nschedule = "0.2s"\n')
    with live_server(tmp_path, env={"IDGRAPH_CONFIG": str(config)}) as served:
        for _ in range(POLLS):
            if "scheduled purge: purge interactions=" in served.log.read_text():
                break
            time.sleep(0.05)
        log = served.log.read_text()
    assert "INFO:     scheduled purge: purge interactions=" in log
