"""End to end: ``idgraph serve --demo`` in a subprocess, a live uvicorn on a free
loopback port, the README's quick-start query over real HTTP, and attacks that must not
stop it answering."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest

from tests.api.live import live_server
from tests.api.readme import quick_start
from tests.api.scrape import samples, value

PROBES = 20
PROBE_TIMEOUT = 30  # a safety net so a server that stops answering fails the test


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A running ``idgraph serve --demo``: its base URL and the keys it printed (as the
    environment its ``export`` lines make). Always stopped afterwards."""
    with live_server(tmp_path) as live:
        yield live.base, live.keys


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
    requests = {"path": "/graphql", "method": "POST", "status": "200"}
    assert value(samples(metrics), "idgraph_http_requests_total", **requests) == 1


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


def fragment_bomb(levels: int) -> str:
    """Each fragment spreads the one before twice, and its twin (2^levels if expanded)."""
    fragments = ["fragment F0 on Customer { id size }", "fragment G0 on Customer { id size }"]
    for n in range(1, levels):
        for name in "FG":
            fragments.append(f"fragment {name}{n} on Customer {{ ...F{n - 1} ...G{n - 1} }}")
    last = levels - 1
    return f'{{ customer(id: "cus_x") {{ ...F{last} ...G{last} }} }}\n' + "\n".join(fragments)


ATTACKS: list[tuple[str, bytes, int, str]] = [
    # (name, body, status, code)
    ("fragment bomb", json.dumps({"query": fragment_bomb(39)}).encode(), 200, "QUERY_TOO_COMPLEX"),
    (
        "nested lists",
        json.dumps(
            {
                "query": '{ resolve(identifier: {kind: "email", value: "alice@example.com"}) '
                "{ identifiers(first: 100) { edges { node { customer { identifiers(first: 100) "
                "{ edges { node { customer { consents { purpose } } } } } } } } } } }"
            }
        ).encode(),
        200,
        "QUERY_TOO_COMPLEX",
    ),
    (
        "repeated fields",
        json.dumps({"query": "{" + " __typename" * 1500 + "}"}).encode(),
        200,
        "QUERY_TOO_COMPLEX",
    ),
    ("deep JSON", b"[" * 200_000 + b"]" * 200_000, 400, "BAD_REQUEST"),
    ("null body", b"null", 400, "BAD_REQUEST"),
]


def test_attacks_are_refused_while_health_and_queries_keep_answering(
    server: tuple[str, dict[str, str]],
) -> None:
    """Attackers send the attacks in a loop on four connections until the probes are
    done: every probe (``/healthz`` and the README query) answers while attacks are in
    flight and answered, and every attack gets its refusal. (Before the limits, the first
    fragment bomb kept the server busy for good: the probes never answered.)"""
    base, env = server
    _, headers, body = quick_start(env)
    attack_headers = {**headers, "content-type": "application/json"}
    probes_done = threading.Event()
    refused: list[tuple[str, int, str]] = []
    wrong: list[tuple[str, int, str]] = []

    def attack(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=PROBE_TIMEOUT) as client:
            n = offset
            while not probes_done.is_set():
                name, payload, status, code = ATTACKS[n % len(ATTACKS)]
                response = client.post("/graphql", content=payload, headers=attack_headers)
                codes = [e["extensions"]["code"] for e in response.json().get("errors", [])]
                outcome = (name, response.status_code, ",".join(codes))
                (refused if outcome == (name, status, code) else wrong).append(outcome)
                n += 1

    attackers = [threading.Thread(target=attack, args=(n,)) for n in range(4)]
    for thread in attackers:
        thread.start()
    try:
        while not refused and not wrong:  # attacks are under way
            time.sleep(0.01)
        before = len(refused) + len(wrong)
        with httpx.Client(base_url=base, timeout=PROBE_TIMEOUT) as client:
            for _ in range(PROBES):
                assert client.get("/healthz").json() == {"status": "ok"}
                result = client.post("/graphql", json=body, headers=headers).json()
                assert result["data"]["resolve"]["id"].startswith("cus_"), result
                assert not probes_done.is_set()
        in_flight = len(refused) + len(wrong)
    finally:
        probes_done.set()
        for thread in attackers:
            thread.join()
    assert wrong == []
    assert in_flight > before  # attacks were answered while the probes were

    assert {name for name, _, _ in refused} == {name for name, *_ in ATTACKS}


def test_a_bad_body_keeps_the_connection_alive(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    host, port = base.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {env['IDGRAPH_KEY']}\r\nX-Purpose: support\r\n"

    def request(body: bytes) -> bytes:
        return (
            f"POST /graphql HTTP/1.1\r\nHost: {host}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT) as sock:
        replies = sock.makefile("rb")
        for body, status in [(b"null", b"400"), (b'{"query": "{ __typename }"}', b"200")]:
            sock.sendall(request(body))
            assert replies.readline().split()[1] == status
            length = 0
            while (line := replies.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert b'"errors"' in replies.read(length) or status == b"200"
