"""The command line as a new user meets it: options anywhere, readable help, the same
exit status for the same refused lines, store URLs that mean what they say, bounded
lines, GraphML that reads back, one live pair of demo keys."""

from __future__ import annotations

import io
import json
import sqlite3
import tracemalloc
from pathlib import Path

import networkx as nx
import pytest

from idgraph.cli import _demo_keys, main
from idgraph.config import Settings
from idgraph.jsonl import read_lines
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.events import event


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("IDGRAPH_STORE", raising=False)
    monkeypatch.delenv("IDGRAPH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["--store", "sqlite:///opt.db", "check"],
        ["check", "--store", "sqlite:///opt.db"],
        ["keys", "list", "--store", "sqlite:///opt.db"],
        ["--config", "opt.toml", "check"],
        ["check", "--config", "opt.toml"],
    ],
)
def test_store_and_config_work_before_or_after_the_command(
    workdir: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "opt.toml").write_text('store = "sqlite:///opt.db"\n')
    assert main(argv) == 0
    assert (workdir / "opt.db").exists()
    assert not (workdir / "idgraph.db").exists()


def test_an_option_after_the_command_wins_over_one_before(workdir: Path) -> None:
    assert main(["--store", "sqlite:///before.db", "check", "--store", "sqlite:///after.db"]) == 0
    assert (workdir / "after.db").exists()
    assert not (workdir / "before.db").exists()


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["keys", "create", "--help"]])
def test_help_is_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    assert ":mod:" not in text
    assert "--store URL" in text
    assert "--config PATH" in text


def test_the_main_help_explains_urls_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "sqlite:////absolute/path.db" in text
    assert "exit codes: 0 success" in text


def test_demo_exits_like_ingest_of_the_same_lines(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", "sqlite:///a.db", "demo", "--events", "60", "--no-progress"]) == 1
    assert "4 rejected" in capsys.readouterr().err
    assert main(["--store", "sqlite:///b.db", "ingest", "demo-events.jsonl", "--quiet"]) == 1


def test_sqlite_urls_and_plain_paths(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (workdir / "sub").mkdir()
    elsewhere = tmp_path_factory.mktemp("abs")
    assert main(["check", "--store", "sqlite:///sub/rel.db"]) == 0
    assert (workdir / "sub" / "rel.db").exists()  # three slashes: relative
    assert main(["check", "--store", f"sqlite:///{elsewhere}/abs.db"]) == 0
    assert (elsewhere / "abs.db").exists()  # four slashes: absolute
    assert main(["check", "--store", "sub/plain.db"]) == 0
    assert (workdir / "sub" / "plain.db").exists()
    assert (workdir / "sub" / "plain.secret").exists()  # its secret sits beside it
    assert main(["check", "--store", "sqlite://"]) == 2


def test_a_huge_line_is_refused_without_being_read_whole() -> None:
    """300 MB on one line, produced on the fly: the reader never holds much of it."""

    class Huge(io.RawIOBase):
        left = 300 * 1024 * 1024

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * n
            self.left -= n
            return n

    stream = io.BufferedReader(Huge())
    tracemalloc.start()
    try:
        [(number, size, error)] = list(read_lines(stream, 1_048_576))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (number, size) == (1, 300 * 1024 * 1024)
    assert "over the 1,048,576-byte limit" in str(error)
    assert peak < 8 * 1024 * 1024


def test_the_line_limit_is_a_setting(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long = json.dumps(event("email:a@x.com", event_id="long", traits={"note": "x" * 5_000}))
    short = json.dumps(event("email:b@x.com", event_id="short"))
    (workdir / "e.jsonl").write_text(f"{long}\n{short}\n")
    monkeypatch.setenv("IDGRAPH_MAX_LINE_BYTES", "1000")
    assert main(["ingest", "e.jsonl"]) == 1
    err = capsys.readouterr().err
    assert "e.jsonl:1: line is 5," in err
    assert "over the 1,000-byte limit (max_line_bytes)" in err
    assert "1 accepted" in err


def test_graphml_with_control_characters_reads_back(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "e.jsonl").write_text(json.dumps(event("email:a@x.com", "cookie:c1")) + "\n")
    assert main(["ingest", "e.jsonl"]) == 0
    with sqlite3.connect(workdir / "idgraph.db") as db:  # as an older version could store
        db.execute("UPDATE nodes SET value = ? WHERE key = 'cookie:c1'", ("c\x01\x1b[31m\x7f",))
        db.execute("UPDATE links SET source = ?", ("web\x00\x0b",))
    assert main(["export", "out.graphml"]) == 0
    graph = nx.read_graphml(workdir / "out.graphml")
    assert graph.nodes["cookie:c1"]["value"] == "c\ufffd\ufffd[31m\x7f"
    [(_, _, link)] = graph.edges(data=True)
    assert link["source"] == "web\ufffd\ufffd"
    assert main(["export", "--format", "csv", "out.csv"]) == 0
    assert "c\x01\x1b[31m" in (workdir / "out.csv").read_text()  # CSV keeps every character


async def test_demo_keys_of_an_earlier_run_are_revoked(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path / "k.db"))
    store = SqliteStore(str(tmp_path / "k.db"), erasure_key=b"k" * 32)
    try:
        graph = IdentityGraph(store, settings)
        await KeyRing(store, settings).create("ops", "admin", ["support"])
        for _ in range(3):
            await _demo_keys(graph)
        keys = await KeyRing(store, settings).list()
    finally:
        await store.close()
    live = sorted(k.role.value for k in keys if k.revoked_at is None)
    assert live == ["admin", "admin", "reader"]  # ops, and one demo pair
    assert len(keys) == 7
    assert next(k for k in keys if k.name == "ops").revoked_at is None
