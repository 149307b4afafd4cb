"""A live ``idgraph serve`` in a subprocess, on a free loopback port, for tests that need
a real server: several worker processes, a browser, an audit run by node."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS = 90
EXPORT = re.compile(r"^export (IDGRAPH_\w+)=(\S+)", re.M)


@dataclass(frozen=True)
class LiveServer:
    base: str  # http://127.0.0.1:PORT
    keys: dict[str, str]  # the demo keys: IDGRAPH_ADMIN_KEY, IDGRAPH_KEY
    log: Path

    def headers(self, key: str = "IDGRAPH_ADMIN_KEY", purpose: str = "support") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[key]}", "X-Purpose": purpose}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def live_server(
    tmp_path: Path, *serve_args: str, env: Mapping[str, str] | None = None
) -> Iterator[LiveServer]:
    """``idgraph serve --demo SERVE_ARGS`` on a store in ``tmp_path``, up and answering
    ``/healthz``; always stopped afterwards."""
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
        *serve_args,
    ]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
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
        yield LiveServer(base, dict(EXPORT.findall(log.read_text())), log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
