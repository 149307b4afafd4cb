"""``idgraph segment``: export, count, list, save, delete; and the held-out check."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bench.segment import check

from idgraph.cli import main
from tests.events import event

LIMA = json.dumps({"trait": {"name": "city", "eq": "Lima"}})


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("IDGRAPH_STORE", url)
    monkeypatch.chdir(tmp_path)
    events = [
        event("email:a@x.com", traits={"city": "Lima", "age": 31}),
        event("email:b@x.com", "cookie:b", traits={"city": "Lima", "tags": ["x", "y"]}),
        event("email:c@x.com", traits={"city": "Cusco"}),
        event("email:a@x.com", consent={"purpose": "marketing", "status": "granted"}),
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert main(["ingest", "--quiet", "events.jsonl"]) == 0
    return url


def test_export_csv_has_one_row_per_member(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["segment", "export", "--filter", LIMA, "--trait", "age", "--trait", "tags", "out.csv"]
    )
    assert code == 0
    assert capsys.readouterr().err.startswith("exported 2 customers as csv to out.csv")
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["customer_id", "size", "created_at", "age", "tags"]
    assert sorted((r[1], r[3], r[4]) for r in rows[1:]) == [
        ("1", "31", ""),
        ("2", "", '["x", "y"]'),
    ]


def test_export_jsonl_under_a_purpose(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "segment",
                "export",
                "-",
                "--filter",
                LIMA,
                "--purpose",
                "marketing",
                "--format",
                "jsonl",
                "--trait",
                "age",
            ]
        )
        == 0
    )
    [line] = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert (row["size"], row["traits"]) == (1, {"age": 31}), "only whom marketing may see"


def test_count_and_saved_segments(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["segment", "count", "--filter", LIMA]) == 0
    assert capsys.readouterr().out == "2\n"
    assert main(["segment", "save", "lima", "--filter", LIMA, "--description", "In Lima"]) == 0
    assert main(["segment", "list"]) == 0
    [saved] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (saved["name"], saved["filter"], saved["description"]) == (
        "lima",
        json.loads(LIMA),
        "In Lima",
    )
    assert main(["segment", "count", "--segment", "lima", "--filter", '{"size": {"gte": 2}}']) == 0
    assert capsys.readouterr().out == "1\n"
    assert main(["segment", "delete", "lima"]) == 0
    assert main(["segment", "delete", "lima"]) == 1
    assert "no saved segment 'lima'" in capsys.readouterr().err


def test_a_bad_filter_is_refused_naming_where(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["segment", "count", "--filter", '{"size": {"atLeast": 2}}']) == 2
    assert "filter.size.atLeast: unknown key" in capsys.readouterr().err
    assert main(["segment", "count", "--filter", "{nope"]) == 2
    assert main(["segment", "count"]) == 2


def test_exports_are_audited_per_customer(store_url: str, tmp_path: Path) -> None:
    assert main(["segment", "export", "--filter", LIMA, "out.csv"]) == 0
    with (tmp_path / "out.csv").open() as f:
        exported = {row["customer_id"] for row in csv.DictReader(f)}
    with sqlite3.connect(tmp_path / "cli.db") as db:
        rows = db.execute(
            "SELECT actor, purpose, customer_id, detail FROM audit WHERE operation = ?",
            ("segment export",),
        ).fetchall()
    assert {r[2] for r in rows} == exported
    assert {(r[0], r[1], r[3]) for r in rows} == {("cli", "operator", "csv filter")}


def test_held_out_people_are_found_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check: the CLI's export of a held-out filter is exactly the people a reference
    computation over the raw events finds."""
    monkeypatch.chdir(tmp_path)
    scores = dict(check(4_000, 300, tmp_path, None))
    assert int(scores["people (reference)"]) > 5
    assert (scores["precision"], scores["recall"], scores["exported, no such person"]) == (
        "1.000",
        "1.000",
        "0",
    )


def test_an_export_to_a_pipe_arrives_whole_when_stopped_and_continued(tmp_path: Path) -> None:
    """Rows far larger than a pipe holds (14 traits of 15 KB each), written to standard
    output by a process that is stopped and continued meanwhile (Ctrl-Z and ``fg``, a
    debugger): every byte arrives, once, in order."""
    store = f"sqlite:///{tmp_path / 'big.db'}"
    names = [f"note{k}" for k in range(14)]  # an event's traits hold 16 KB at most
    events = [
        event(f"email:p{i}@x.com", traits={name: f"{i:03d}" * 5_000})
        for i in range(40)
        for name in names
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert main(["--store", store, "ingest", "--quiet", str(tmp_path / "events.jsonl")]) == 0
    traits = [option for name in names for option in ("--trait", name)]
    export = [sys.executable, "-m", "idgraph.cli", "--store", store, "segment", "export", "-",
              "--filter", '{"all": []}', *traits, "--format", "jsonl"]  # fmt: skip
    expected = subprocess.run(export, capture_output=True, check=True).stdout
    assert len(expected.splitlines()) == 40
    assert len(expected) > 40 * 200_000

    received = []
    with subprocess.Popen(export, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        stopping = threading.Thread(target=stop_and_continue, args=(process,))
        stopping.start()
        while chunk := process.stdout.read(65_536):
            received.append(chunk)
            time.sleep(0.001)  # the exporter waits on a full pipe meanwhile
        assert process.wait() == 0
        stopping.join()
    assert b"".join(received) == expected


def stop_and_continue(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP and SIGCONT, every few milliseconds, until ``process`` ends."""
    while process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGSTOP)
            time.sleep(0.003)
            os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.003)
