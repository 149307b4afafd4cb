"""The command line, end to end on the embedded store."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pytest

from idgraph.cli import main
from idgraph.demo import DemoGenerator
from tests.events import event


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("IDGRAPH_STORE", url)
    monkeypatch.chdir(tmp_path)
    return url


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_demo_then_resolve_prints_a_stitched_customer(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--events", "500"]) == 1  # broken lines refused
    capsys.readouterr()
    assert main(["resolve", "email:Alice@Example.com"]) == 0
    profile = json.loads(capsys.readouterr().out)
    kinds = {n["kind"] for n in profile["identity_nodes"]}
    assert {"email", "phone", "user_id", "cookie", "device", "account", "crm_id"} <= kinds
    assert profile["traits"]["name"]["value"] == "Alice Smith"
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok: every invariant holds")


def test_ingest_reports_each_bad_line_and_the_summary(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(event("email:a@x.com", "cookie:c1", event_id="good"))
    path = write_lines(
        tmp_path / "events.jsonl",
        [
            good,
            "{not json",
            json.dumps({"id": "no-time", "source": "web"}),
            json.dumps(event("email:nope", event_id="bad-email")),
            "",
            json.dumps(event("phone:+1", event_id="bad-phone")),
            json.dumps(event("Bad Kind:x", event_id="bad-kind")),
            json.dumps(event("cookie:x", event_id="big", traits={"blob": "x" * 2_000_000})),
            json.dumps(["not", "an", "object"]),
        ],
    )
    assert main(["ingest", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    errors = [
        line for line in lines if line.startswith(f"{path}:") and not line.startswith(f"{path}: ")
    ]
    assert [e.split(":")[1] for e in errors] == ["2", "3", "4", "6", "7", "8", "9"]
    assert "invalid JSON" in errors[0]
    assert "event 'no-time': timestamp: is required" in errors[1]
    assert "event 'bad-email': identifiers[0].value: invalid email address" in errors[2]
    assert "invalid phone number" in errors[3]
    assert "kind 'Bad Kind' must match" in errors[4]
    assert "over the 1,048,576-byte limit" in errors[5]
    assert "an event must be a JSON object, got array" in errors[6]
    assert "8 lines: 1 accepted, 0 duplicate, 7 rejected" in lines[-1]


def test_ingest_twice_is_idempotent(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(
        tmp_path / "e.jsonl", [json.dumps(e) for e in DemoGenerator(50, seed=3).events(300)]
    )
    assert main(["ingest", str(path)]) == 0
    assert gc.isenabled(), "the bulk-ingest GC policy is undone"
    assert gc.get_freeze_count() == 0
    assert main(["export", "--format", "csv", "first.csv"]) == 0
    assert main(["ingest", str(path)]) == 0
    assert "0 accepted, 300 duplicate" in capsys.readouterr().err
    assert main(["export", "--format", "csv", "second.csv"]) == 0
    assert (tmp_path / "first.csv").read_text() == (tmp_path / "second.csv").read_text()


def test_unlink_with_ban_then_check(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(
        tmp_path / "e.jsonl",
        [
            json.dumps(event("email:a@x.com", "device:d1")),
            json.dumps(event("device:d1", "cookie:c1")),
        ],
    )
    assert main(["ingest", str(path)]) == 0
    capsys.readouterr()
    assert main(["unlink", "email:A@x.com", "device:d1", "--ban"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rejected_links"] == [{"a": "device:d1", "b": "email:a@x.com", "rule": "unlink"}]
    assert [p["new"] for p in result["parts"]] == [False, True]
    assert main(["check"]) == 0


def test_unknown_identifier_and_bad_store_exit_codes(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resolve", "email:nobody@x.com"]) == 1
    assert "no customer has email:nobody@x.com" in capsys.readouterr().err
    assert main(["resolve", "nokind"]) == 2
    assert "is not kind:value" in capsys.readouterr().err
    assert main(["--store", "mysql://x", "check"]) == 2
    assert "unsupported store URL" in capsys.readouterr().err
    assert main(["ingest", "missing.jsonl"]) == 2


def test_exports_graphml_and_csv(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--events", "300"]) == 1  # broken lines refused
    assert main(["export", "--format", "graphml", "g.graphml"]) == 0
    assert main(["export", "--format", "csv", "n.csv"]) == 0
    graph = nx.read_graphml(tmp_path / "g.graphml")
    rows = (tmp_path / "n.csv").read_text().splitlines()
    assert rows[0] == "key,kind,value,customer_id"
    assert graph.number_of_nodes() == len(rows) - 1
    accepted = nx.Graph(
        graph.edge_subgraph([(a, b) for a, b, d in graph.edges(data=True) if d["accepted"]])
    )
    accepted.add_nodes_from(graph)
    customer = {key: graph.nodes[key]["customer_id"] for key in graph}
    for component in nx.connected_components(accepted):
        assert len({customer[k] for k in component}) == 1


def test_killed_ingest_resumes_to_the_same_end_state(tmp_path: Path) -> None:
    events = [json.dumps(e) for e in DemoGenerator(1000, seed=5).events(20_000)]
    path = write_lines(tmp_path / "e.jsonl", events)
    (tmp_path / "idgraph.toml").write_text("batch_size = 100\n")
    env = {**os.environ, "IDGRAPH_CONFIG": str(tmp_path / "idgraph.toml")}
    cli = [sys.executable, "-m", "idgraph.cli"]

    def applied(db: str) -> int:
        with sqlite3.connect(tmp_path / db) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            except sqlite3.OperationalError:  # not created yet
                return 0

    def run(db: str, *, kill: bool = False) -> None:
        proc = subprocess.Popen(
            [*cli, "--store", f"sqlite:///{tmp_path / db}", "ingest", str(path)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        if not kill:
            assert proc.wait(timeout=300) == 0
            return
        deadline = time.monotonic() + 60
        while applied(db) < 1000 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    run("killed.db", kill=True)
    assert 0 < applied("killed.db") < 20_000, "killed midway"
    run("killed.db")
    run("clean.db")

    def partition(db: str) -> set[frozenset[str]]:
        out = subprocess.run(
            [*cli, "--store", f"sqlite:///{tmp_path / db}", "export", "--format", "csv", "-"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[1:]
        groups: dict[str, set[str]] = {}
        for row in out:
            key, _, _, customer = row.rsplit(",", 3)
            groups.setdefault(customer, set()).add(key)
        return {frozenset(g) for g in groups.values()}

    assert partition("killed.db") == partition("clean.db")
    check = subprocess.run(
        [*cli, "--store", f"sqlite:///{tmp_path / 'killed.db'}", "check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    assert "20000 events" in check.stdout


def test_check_reports_a_broken_store(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(
        tmp_path / "e.jsonl",
        [
            json.dumps(event("email:a@x.com", "cookie:c1")),
            json.dumps(event("email:b@x.com", "cookie:c2")),
        ],
    )
    assert main(["ingest", str(path)]) == 0
    with sqlite3.connect(tmp_path / "cli.db") as db:  # corrupt it behind idgraph's back
        db.execute(
            "UPDATE nodes SET cluster = (SELECT cluster FROM nodes WHERE key = "
            "'email:a@x.com') WHERE key = 'cookie:c2'"
        )
        db.execute("INSERT INTO aliases VALUES ('cus_gone', 'cus_nowhere', '2026-01-01')")
    capsys.readouterr()
    assert main(["check"]) == 1
    report = capsys.readouterr().out
    assert report.splitlines()[0].startswith("8 invariant violations")
    assert "accepted link cookie:c2 — email:b@x.com joins customers" in report
    assert "alias cus_gone leads to cus_nowhere, which is not a live customer" in report
    assert "records size 2, has 1 nodes" in report


def test_two_concurrent_ingests_end_like_one_sequential_run(tmp_path: Path) -> None:
    events = [json.dumps(e) for e in DemoGenerator(300, seed=9).events(8000)]
    first = write_lines(tmp_path / "first.jsonl", events[:5000])
    second = write_lines(tmp_path / "second.jsonl", events[3000:])  # overlaps by 2000
    # Rules that never refuse: with them, the outcome depends on the order of events
    # (who used the shared tablet first), and concurrent runs have no single order.
    (tmp_path / "idgraph.toml").write_text(
        "batch_size = 50\n[rules]\ndefault_limit = 100000\nmax_size = 100000\n"
        "[rules.limits]\nuser_id = 100000\nemail = 100000\nphone = 100000\n"
    )
    env = {**os.environ, "IDGRAPH_CONFIG": str(tmp_path / "idgraph.toml")}
    cli = [sys.executable, "-m", "idgraph.cli"]

    def ingest(db: str, path: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*cli, "--store", f"sqlite:///{tmp_path / db}", "ingest", str(path)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )

    def succeed(process: subprocess.Popen[str]) -> None:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err

    racing = [ingest("concurrent.db", first), ingest("concurrent.db", second)]
    for process in racing:
        succeed(process)
    for path in (first, second):
        succeed(ingest("sequential.db", path))

    def partition(db: str) -> set[frozenset[str]]:
        with sqlite3.connect(tmp_path / db) as conn:
            groups: dict[int, set[str]] = {}
            for key, cluster in conn.execute("SELECT key, cluster FROM nodes"):
                groups.setdefault(cluster, set()).add(key)
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 8000
        return {frozenset(g) for g in groups.values()}

    assert partition("concurrent.db") == partition("sequential.db")


def audit_rows(db: Path) -> list[tuple[str, str, str, str | None, str]]:
    with sqlite3.connect(db) as raw:
        return raw.execute(
            "SELECT actor, purpose, operation, customer_id, detail FROM audit ORDER BY seq"
        ).fetchall()


def test_cli_reads_and_steward_actions_are_audited_as_cli(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(
        tmp_path / "e.jsonl",
        [
            json.dumps(event("email:wanda.q@x.com", "device:dev-wq-1")),
            json.dumps(event("device:dev-wq-1", "cookie:ck-wq-1")),
        ],
    )
    assert main(["ingest", str(path)]) == 0
    capsys.readouterr()
    assert main(["resolve", "email:wanda.q@x.com"]) == 0
    customer = json.loads(capsys.readouterr().out)["customer_id"]
    assert main(["resolve", "email:nobody.q@x.com"]) == 1
    assert main(["unlink", "email:wanda.q@x.com", "device:dev-wq-1", "--reason", "T-42"]) == 0
    split = [p["customer_id"] for p in json.loads(capsys.readouterr().out)["parts"]]
    assert main(["unlink", "email:wanda.q@x.com", "device:dev-unknown-q"]) == 1
    assert main(["export", "--format", "csv", "nodes.csv"]) == 0
    capsys.readouterr()
    assert main(["forget", "email:wanda.q@x.com"]) == 0
    forgotten = json.loads(capsys.readouterr().out)["customer_id"]
    assert main(["forget", "email:wanda.q@x.com"]) == 1

    rows = audit_rows(tmp_path / "cli.db")
    assert rows == [
        ("cli", "operator", "resolve", customer, ""),
        ("cli", "operator", "resolve", None, "not found"),
        (
            "cli",
            "operator",
            "unlink",
            customer,
            f"unlink ban=False parts={','.join(split)} reason=T-42",
        ),
        ("cli", "operator", "unlink", None, "not found"),
        ("cli", "operator", "export", None, "csv: 3 identity nodes"),
        ("cli", "erasure", "forget", forgotten, ""),
        ("cli", "erasure", "forget", None, "not found"),
    ]
    assert not any(value in repr(rows) for value in ("wanda", "nobody", "dev-", "ck-wq"))


def test_files_the_cli_writes_are_private(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    previous = os.umask(0o022)
    try:
        (tmp_path / "old.csv").write_text("stale\n")
        (tmp_path / "old.csv").chmod(0o644)
        assert main(["demo", "--events", "100", "--no-progress"]) == 1  # broken lines refused
        assert main(["export", "--format", "graphml", "graph.graphml"]) == 0
        assert main(["export", "--format", "csv", "old.csv"]) == 0
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if p.is_file()}
    assert modes == dict.fromkeys(
        [
            "cli.db",  # its -wal and -shm are gone once the command ends
            "cli.secret",
            "demo-events.jsonl",
            "graph.graphml",
            "old.csv",
        ],
        0o600,
    )
    assert (tmp_path / "old.csv").read_text().startswith("key,kind,value,customer_id")


@pytest.mark.parametrize(
    "args",
    [
        ["forget", "cus_\udcff"],  # a non-UTF-8 byte on the command line
        ["forget", "cus_\x01"],
        ["resolve", "email:\udcff@x.com"],
        ["resolve", "user_id:a\x01b"],
        ["unlink", "cookie:\udcfe", "cookie:x"],
        ["keys", "revoke", "n\udcff"],
        ["keys", "create", "web\n", "--role", "reader", "--purpose", "support"],
    ],
)
def test_hostile_arguments_are_refused_with_a_message_not_a_traceback(
    store_url: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--events", "50"]) == 1  # broken lines refused
    capsys.readouterr()
    assert main(args) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("idgraph: ")
    assert "Traceback" not in err
    assert main(["keys", "list"]) == 0
    assert "web" not in capsys.readouterr().out  # no key was made
