"""Metrics under ``idgraph serve --workers 2``, for real: whichever worker answers a
scrape, counters add up every worker's requests and never go backwards; CLI ingests
that share the metrics directory are counted too; the directory itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from idgraph.api.metrics import DIRECTORY_VARIABLE, shared_directory
from tests.api.live import LiveServer, live_server
from tests.api.scrape import samples, value

REQUESTS = 60
SCRAPES = 12
READY = {"path": "/readyz", "method": "GET", "status": "200"}


def scrape(client: httpx.Client, server: LiveServer) -> dict[str, float]:
    parsed = samples(client.get("/metrics", headers=server.headers()).text)
    return {
        "ready": value(parsed, "idgraph_http_requests_total", **READY) or 0,
        "scrapes": value(
            parsed, "idgraph_http_requests_total", path="/metrics", method="GET", status="200"
        )
        or 0,
        "accepted": value(parsed, "idgraph_ingest_events_total", outcome="accepted") or 0,
        "cpu": value(parsed, "process_cpu_seconds_total") or 0,
        "processes": value(parsed, "idgraph_processes") or 0,
    }


def test_counters_add_up_across_workers_and_never_go_backwards(tmp_path: Path) -> None:
    with live_server(tmp_path, "--workers", "2") as server:
        seen: list[dict[str, float]] = []
        # A new connection per request, so both workers serve some of them.
        for n in range(REQUESTS):
            assert httpx.get(f"{server.base}/readyz", timeout=10).status_code == 200
            if n % (REQUESTS // SCRAPES) == 0:
                with httpx.Client(base_url=server.base, timeout=10) as client:
                    seen.append(scrape(client, server))
        with httpx.Client(base_url=server.base, timeout=10) as client:
            final = scrape(client, server)
    for name in ("ready", "scrapes", "cpu"):
        series = [s[name] for s in [*seen, final]]
        assert series == sorted(series), (name, series)
    # Every request counted once, whichever worker served it and whichever scraped.
    assert final["ready"] == REQUESTS
    assert final["scrapes"] == len(seen)  # the scrape counts only once it is answered
    assert final["processes"] == 2


def test_a_cli_ingest_sharing_the_directory_is_counted(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "cli-1", "timestamp": "2026-03-01T00:00:00Z", "source": "crm",'
        ' "identifiers": [{"kind": "email", "value": "cli@example.com"}]}\n'
    )
    with (
        live_server(tmp_path, "--workers", "2", env=env) as server,
        httpx.Client(base_url=server.base, timeout=10) as client,
    ):
        before = scrape(client, server)["accepted"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "idgraph.cli",
                "--store",
                f"sqlite:///{tmp_path / 'idgraph.db'}",
                "ingest",
                str(events),
            ],
            cwd=tmp_path,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        after = scrape(client, server)
    assert after["accepted"] == before + 1
    assert after["processes"] == 2  # the CLI process left the live gauges when it ended


def test_serve_empties_only_metrics_files_of_a_configured_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = ["idgraph.db", "idgraph.db-wal", "notes.txt"]
    stale = ["counter_12.db", "gauge_livesum_12.db", "histogram_7.db"]
    for name in kept + stale:
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setenv(DIRECTORY_VARIABLE, str(tmp_path))
    with shared_directory(workers=2):
        assert os.environ[DIRECTORY_VARIABLE] == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_several_workers_get_a_temporary_directory_when_none_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DIRECTORY_VARIABLE, raising=False)
    with shared_directory(workers=1):
        assert DIRECTORY_VARIABLE not in os.environ
    with shared_directory(workers=2):
        directory = Path(os.environ[DIRECTORY_VARIABLE])
        assert directory.is_dir()
    assert DIRECTORY_VARIABLE not in os.environ
    assert not directory.exists()
