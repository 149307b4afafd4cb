"""End to end: ``idgraph serve --demo`` in a subprocess, a live uvicorn on a free
loopback port, the README's quick-start query over real HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest

from tests.api.readme import quick_start

STARTUP_SECONDS = 60
EXPORT = re.compile(r"^export (IDGRAPH_\w+)=(\S+)", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running ``idgraph serve --demo``: its base URL and the keys it printed (as the
    environment its ``export`` lines make). Always stopped afterwards."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "idgraph.cli",
        "--store",
        f"sqlite:///{tmp_path / 'idgraph.db'}",
        "serve",
        "--demo",
        "--no-progress",
        "--port",
        str(port),
    ]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"server exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server not up:\n{log.read_text()}"
            time.sleep(0.1)
        yield base, dict(EXPORT.findall(log.read_text()))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_demo_answers_the_readme_query(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    assert set(env) == {"IDGRAPH_ADMIN_KEY", "IDGRAPH_KEY"}
    url, headers, body = quick_start(env)
    assert url.endswith("/graphql")
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.post("/graphql", json=body).status_code == 401
        result = client.post("/graphql", json=body, headers=headers).json()
        assert "errors" not in result, result
        assert result["data"]["resolve"]["id"].startswith("cus_")
        assert client.get("/graphql", headers={"accept": "text/html"}).status_code == 200
        reader = {"Authorization": f"Bearer {env['IDGRAPH_KEY']}"}
        assert client.get("/metrics", headers=reader).status_code == 403
        admin = {"Authorization": f"Bearer {env['IDGRAPH_ADMIN_KEY']}"}
        metrics = client.get("/metrics", headers=admin).text
    assert 'idgraph_http_requests_total{path="/graphql",method="POST",status="200"} 1' in metrics


def test_the_server_log_holds_no_personal_data(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = server
    query = '{ resolve(identifier: {kind: "email", value: "alice@example.com"}) { id } }'
    headers = {"Authorization": f"Bearer {env['IDGRAPH_KEY']}", "X-Purpose": "support"}
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/graphql", params={"query": query}, headers=headers).status_code == 200
        assert client.post("/graphql", json={"query": query}).status_code == 401
    log = unquote_plus((tmp_path / "serve.log").read_text())  # access logs quote URLs
    assert "alice@example.com" not in log
    assert env["IDGRAPH_KEY"] not in log.split("export IDGRAPH_KEY=", 1)[1].split("\n", 1)[1]
