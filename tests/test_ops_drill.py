"""The operator's drill, end to end with a data key: a live ``idgraph serve`` answers
while ``idgraph backup`` runs; the backup restores into an empty store that exports the
same graph and checks clean; a trait value and an interaction property sent over the API
read back, yet are in no file idgraph wrote (store, WAL, keyring, backup unpacked,
exports, report, log); ``purge --apply`` keeps ``check`` clean; the report of the
encrypted store draws its charts from nothing outside the page."""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from idgraph.cli import main
from tests.api.live import LiveServer, live_server

TRAIT = "Trait-at-rest-5b1f9c0e7d"  # long and unique: found only where it is written
PROPERTY = "Property-at-rest-c4e82a9f31"
EMAIL = "drill@example.com"
RESOLVE = """query($v: String!) { resolve(identifier: {kind: "email", value: $v}) {
  traits { edges { node { name value } } }
  interactions { edges { node { properties } } } } }"""
INGEST = "mutation($e: [EventInput!]!) { ingest(events: $e) { accepted rejected } }"
RETENTION = """[retention]
interactions_days = 30
anonymous_customers_days = 30
audit_days = 1
event_ids_days = 30
keep_expired_consents = false
"""


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """``idgraph serve --demo`` with a data key and a server secret from files in
    ``tmp_path``, holding a customer with :data:`TRAIT` and :data:`PROPERTY`."""
    monkeypatch.chdir(tmp_path)
    Path("data.key").write_text("d" * 64 + "\n")
    Path("secret").write_text("s" * 64 + "\n")
    monkeypatch.delenv("IDGRAPH_SECRET", raising=False)
    monkeypatch.delenv("IDGRAPH_DATA_KEY", raising=False)
    monkeypatch.delenv("IDGRAPH_KEYRING", raising=False)
    monkeypatch.setenv("IDGRAPH_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("IDGRAPH_DATA_KEY_FILE", str(tmp_path / "data.key"))
    with live_server(tmp_path) as live:
        sent = {
            "id": "drill-1",
            "timestamp": "2026-01-05T10:00:00Z",
            "source": "crm",
            "identifiers": [{"kind": "email", "value": EMAIL}],
            "traits": {"note": TRAIT},
            "interaction": {"type": "ticket", "properties": {"subject": PROPERTY}},
        }
        assert graphql(live, INGEST, {"e": [sent]})["ingest"] == {"accepted": 1, "rejected": 0}
        yield live


def graphql(live: LiveServer, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{live.base}/graphql",
        json={"query": query, "variables": variables},
        headers=live.headers(),
        timeout=30,
    )
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def read_back(live: LiveServer) -> tuple[list[Any], list[Any]]:
    customer = graphql(live, RESOLVE, {"v": EMAIL})["resolve"]
    return (
        [e["node"]["value"] for e in customer["traits"]["edges"]],
        [e["node"]["properties"] for e in customer["interactions"]["edges"]],
    )


def resolves_while(live: LiveServer, stop: threading.Event, answers: list[Any]) -> None:
    """Read the customer again and again until ``stop``; each answer into ``answers``."""
    while not stop.is_set():
        try:
            answers.append(read_back(live))
        except (AssertionError, httpx.HTTPError) as exc:
            answers.append(exc)


def unpacked(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def export_rows(url: str, name: str) -> list[str]:
    assert main(["--store", url, "export", "--format", "csv", name]) == 0
    return sorted(Path(name).read_text().splitlines())


def test_the_operators_drill_with_a_data_key(
    served: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live = served
    store = f"sqlite:///{tmp_path / 'idgraph.db'}"
    assert read_back(live) == ([TRAIT], [{"subject": PROPERTY}])

    stop, answers = threading.Event(), list[Any]()
    reader = threading.Thread(target=resolves_while, args=(live, stop, answers))
    reader.start()
    try:
        assert main(["--store", store, "backup", "store.backup"]) == 0
    finally:
        stop.set()
        reader.join()
    assert answers
    assert all(a == ([TRAIT], [{"subject": PROPERTY}]) for a in answers)

    served_rows = export_rows(store, "served.csv")
    # The drill's store gets a copy of the keyring: with the live one, its purge (or a
    # forget) would shred keys the served store still uses.
    live_keyring, copy = sqlite3.connect("secret.keyring"), sqlite3.connect("drill.keyring")
    with closing(live_keyring), closing(copy):
        live_keyring.backup(copy)
    monkeypatch.setenv("IDGRAPH_KEYRING", str(tmp_path / "drill.keyring"))
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    assert main(["--store", restored, "restore", "store.backup"]) == 0
    assert main(["--store", restored, "check"]) == 0
    assert export_rows(restored, "restored.csv") == served_rows
    capsys.readouterr()
    assert main(["--store", restored, "resolve", f"email:{EMAIL}"]) == 0
    assert json.loads(capsys.readouterr().out)["traits"]["note"]["value"] == TRAIT

    Path("idgraph.toml").write_text(RETENTION)
    assert main(["--store", restored, "purge"]) == 0
    assert main(["--store", restored, "purge", "--apply", "--no-progress"]) == 0
    assert main(["--store", restored, "check"]) == 0
    assert main(["--store", restored, "report", "report.html"]) == 0
    page = Path("report.html").read_text()
    assert page.count("<svg") == 7
    assert "//" not in page.replace("<!doctype html>", "")

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"idgraph.db-wal", "secret.keyring", "drill.keyring", "store.backup"} <= names
    # The scan sees into the backup: identifier values stay searchable, so in plaintext.
    assert EMAIL.encode() in unpacked(Path("store.backup"))
    for path in written:
        content = unpacked(path)
        assert TRAIT.encode() not in content, path.name
        assert PROPERTY.encode() not in content, path.name
    assert read_back(live) == ([TRAIT], [{"subject": PROPERTY}])
