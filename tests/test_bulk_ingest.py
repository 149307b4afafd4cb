"""A large file's lines are read and checked by a second process: the user sees what one
process would show, and a second process that stops ends the run cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idgraph import jsonl
from idgraph.bulk import produced_elsewhere
from idgraph.cli import main
from idgraph.config import Settings
from idgraph.demo import DemoGenerator
from idgraph.errors import WorkerFailed
from idgraph.jsonl import CheckedBatch, available_cores, checked_batches, ingest_file
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event
from tests.test_events import texts

ALWAYS, NEVER = 1, 2**40  # worker_min_bytes: every file, or none
# Ingest starts the second process only where another core may run it.
needs_two_cores = pytest.mark.skipif(
    available_cores() < 2, reason="ingest checks lines in a second process only with 2+ cores"
)


def messy_file(path: Path, events: int) -> Path:
    """Demo events with every kind of refused line among them, and a last line with no
    newline (the file ends mid-batch)."""
    lines = [json.dumps(e) for e in DemoGenerator(people=events // 10, seed=3).events(events)]
    lines[7:7] = ["{not json", "", "   ", "[1, 2]"]
    lines[40:40] = [json.dumps({"id": "no-time", "source": "web"}), lines[30]]  # a duplicate
    lines[90:90] = [json.dumps(event("email:not-an-email", event_id="bad-email"))]
    lines[95:95] = ['{"id": "long", "pad": "' + "x" * 2_000 + '"}']
    lines.append(json.dumps(event("email:last@x.com", "cookie:last")))
    path.write_text("\n".join(lines))
    return path


def config(path: Path, worker_min_bytes: int) -> Path:
    path.write_text(
        f"batch_size = 37\nmax_line_bytes = 1000\nworker_min_bytes = {worker_min_bytes}\n"
    )
    return path


def partition(db: Path) -> set[frozenset[str]]:
    with sqlite3.connect(db) as conn:
        groups: dict[int, set[str]] = {}
        for key, cluster in conn.execute("SELECT key, cluster FROM nodes"):
            groups.setdefault(cluster, set()).add(key)
    return {frozenset(g) for g in groups.values()}


@needs_two_cores
def test_a_second_process_shows_the_user_what_one_process_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = messy_file(tmp_path / "events.jsonl", 500)
    seen = {}
    for name, threshold in (("one", NEVER), ("two", ALWAYS)):
        toml = config(tmp_path / f"{name}.toml", threshold)
        store = f"sqlite:///{tmp_path / name}.db"
        assert main(["--config", str(toml), "--store", store, "ingest", str(path)]) == 1
        err = capsys.readouterr().err
        seen[name] = (err.rsplit(";", 1)[0], partition(tmp_path / f"{name}.db"))
    assert seen["two"] == seen["one"]
    report = seen["one"][0]
    for line, message in [
        (8, "invalid JSON"),
        (11, "an event must be a JSON object, got array"),
        (41, "event 'no-time': timestamp: is required"),
        (91, "event 'bad-email': identifiers[0].value: invalid email address"),
        (96, "line is 2,026 bytes, over the 1,000-byte limit"),
    ]:
        assert f"events.jsonl:{line}: {message}" in report, report
    assert "507 lines: 501 accepted, 1 duplicate, 5 rejected" in report


@needs_two_cores
def test_a_first_batch_over_the_head_bytes_loses_no_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process checks the first batch's lines while the second one starts; where
    they are over ``HEAD_BYTES``, it checks those bytes' lines and the second process
    the rest of the batch: every line is read once, and numbered as one process does."""
    path = messy_file(tmp_path / "events.jsonl", 500)
    monkeypatch.setattr(jsonl, "HEAD_BYTES", 2_500)  # ~10 lines of the first 37

    async def run(name: str, threshold: int) -> tuple[object, ...]:
        store = SqliteStore(tmp_path / f"{name}.db", erasure_key=ERASURE_KEY)
        graph = IdentityGraph(store, Settings(max_line_bytes=1000, worker_min_bytes=threshold))
        try:
            summary = await ingest_file(graph, path, 37)
        finally:
            await store.close()
        errors = [(e.line, e.message) for e in summary.errors]
        return summary.lines, summary.accepted, summary.duplicates, errors

    one, two = asyncio.run(run("one", NEVER)), asyncio.run(run("two", ALWAYS))
    assert two == one
    assert one[:3] == (507, 501, 1)
    assert partition(tmp_path / "two.db") == partition(tmp_path / "one.db")


def test_batches_are_cut_by_line_number_blank_and_refused_lines_included(
    tmp_path: Path,
) -> None:
    lines = [json.dumps(event(f"email:p{n}@x.com")) for n in range(10)]
    lines[2:2] = ["", "{not json"]  # lines 3 and 4
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    batches = list(checked_batches(path, Settings(), 3))
    assert [b.numbers for b in batches] == [[1, 2], [5, 6], [7, 8, 9], [10, 11, 12]]
    assert [[e.line for e in b.errors] for b in batches] == [[], [4], [], []]
    line_5 = jsonl.FilePoint(len("".join(f"{line}\n" for line in lines[:4])), 5)
    rest = list(checked_batches(path, Settings(), 3, start=line_5))
    assert [b.numbers for b in rest] == [[5, 6], [7, 8, 9], [10, 11, 12]]


def small_batches(worker_min_bytes: int) -> Settings:
    return Settings(batch_size=100, worker_min_bytes=worker_min_bytes)


# JSON values (test_events' without its 4,300-digit integers, which json.dumps refuses).
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1])
    | st.floats()
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
_events = st.builds(
    lambda n, traits, properties, channel: json.dumps(
        event(
            f"email:p{n}@x.com",
            f"cookie:c{n % 3}",
            traits=traits,
            interaction={"type": "view", "channel": channel, "properties": properties},
        )
    ),
    st.integers(0, 5),
    st.dictionaries(texts, _values, max_size=3),
    st.dictionaries(texts, _values, max_size=3),
    texts,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_events | st.just("{not json"), max_size=8))
def test_a_checked_batch_crosses_the_pipe_unchanged(lines: list[str]) -> None:
    """Whatever the events hold, what the second process sends is what was checked,
    value for value and type for type (``repr``: 1, 1.0 and True differ)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_text("".join(line + "\n" for line in lines))
        batches = list(checked_batches(path, Settings(), 3))
    encode, decode = msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder(CheckedBatch).decode
    for batch in batches:
        assert repr(decode(encode(batch))) == repr(batch)


def demo_file(path: Path, events: int) -> Path:
    lines = [json.dumps(e) for e in DemoGenerator(people=events // 10, seed=4).events(events)]
    path.write_text("\n".join(lines) + "\n")
    return path


def applied_events(db: Path) -> int:
    """Events the store at ``db`` has applied (0 before it exists)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # no table yet
        return 0
    finally:
        conn.close()


def checkers(parent: int) -> list[int]:
    """The processes checking lines for process ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
            if int(fields[1]) == parent and b"idgraph.bulk" in cmdline:
                found.append(int(stat.parent.name))
    return found


@needs_two_cores
def test_a_checker_that_dies_stops_the_run_after_whole_batches(tmp_path: Path) -> None:
    path = demo_file(tmp_path / "events.jsonl", 5_000)

    def kill_the_checker(result: object) -> None:
        for pid in checkers(os.getpid()):
            os.kill(pid, signal.SIGKILL)

    async def run(on_batch: object = lambda result: None) -> tuple[int, list[str]]:
        store = SqliteStore(tmp_path / "idgraph.db", erasure_key=ERASURE_KEY)
        graph = IdentityGraph(store, small_batches(ALWAYS))
        try:
            summary = await ingest_file(graph, path, 100, on_batch=on_batch)  # type: ignore[arg-type]
            return summary.accepted, await graph.check()
        finally:
            await store.close()

    with pytest.raises(WorkerFailed, match="stopped \\(killed by SIGKILL\\); applied batches"):
        asyncio.run(run(kill_the_checker))
    applied = applied_events(tmp_path / "idgraph.db")
    assert 0 < applied < 5_000
    assert applied % 100 == 0  # whole batches
    accepted, violations = asyncio.run(run())  # run again: it goes on
    assert (accepted, violations) == (5_000 - applied, [])


def failing(rounds: int) -> Iterator[CheckedBatch]:
    """Produces nothing, then fails (for the test below; runs in the second process)."""
    if rounds:
        raise OSError("the disk went away")
    yield from ()


def test_a_checker_that_fails_says_why() -> None:
    with (
        produced_elsewhere(CheckedBatch, failing, 1) as batches,
        pytest.raises(WorkerFailed, match="failed: OSError: the disk went away"),
    ):
        list(batches)
    with produced_elsewhere(CheckedBatch, failing, 0) as batches:
        assert list(batches) == []


class Blob(msgspec.Struct, array_like=True, tag=True):
    number: int
    data: bytes


def blob_data(number: int) -> bytes:
    return number.to_bytes(4, "little") * 250_000  # 1 MB: far more than a pipe holds


def blobs(count: int) -> Iterator[Blob]:
    """Large items (for the test below; runs in the second process)."""
    for number in range(count):
        yield Blob(number, blob_data(number))


def test_items_arrive_whole_when_the_second_process_is_stopped_and_continued() -> None:
    """A blocking write to a pipe returns short when its process is stopped and
    continued (SIGSTOP and SIGCONT, as a debugger, a container pause or a suspend may
    do); every byte must still arrive once, in order."""
    stopping = True

    def stop_and_continue() -> None:
        while stopping:
            for pid in checkers(os.getpid()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(0.005)
                    os.kill(pid, signal.SIGCONT)
            time.sleep(0.005)

    interrupter = threading.Thread(target=stop_and_continue)
    interrupter.start()
    try:
        with produced_elsewhere(Blob, blobs, 60) as received:
            for number, blob in enumerate(received):
                assert (blob.number, blob.data == blob_data(number)) == (number, True)
                time.sleep(0.002)  # the second process waits on a full pipe meanwhile
        assert number == 59
    finally:
        stopping = False
        interrupter.join()


def test_an_item_that_cannot_be_read_stops_the_run_with_a_clear_error() -> None:
    with (
        produced_elsewhere(CheckedBatch, blobs, 1) as batches,
        pytest.raises(WorkerFailed, match=r"sent a batch that cannot be read .*run again"),
    ):
        list(batches)


def heeding_ctrl_c() -> None:
    """In the child, before it runs the command: SIGINT at its default, as a command
    started from a terminal has it. A background job of a non-interactive shell (a
    suite run with ``&``) ignores SIGINT, and its children inherit that: Python then
    installs no handler, and the Ctrl-C below would go unheard."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@needs_two_cores
def test_ctrl_c_stops_both_processes_and_keeps_whole_batches(tmp_path: Path) -> None:
    path = demo_file(tmp_path / "events.jsonl", 20_000)
    toml = config(tmp_path / "idgraph.toml", ALWAYS)
    db = tmp_path / "idgraph.db"
    cli = [sys.executable, "-m", "idgraph.cli", "--config", str(toml), "--store", f"sqlite:///{db}"]
    # A session of its own, so that Ctrl-C can be sent to the whole group, as a terminal does.
    proc = subprocess.Popen(
        [*cli, "ingest", str(path)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=heeding_ctrl_c,
    )

    deadline = time.monotonic() + 120
    while applied_events(db) < 500 and time.monotonic() < deadline:
        time.sleep(0.02)
    [checker] = checkers(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "idgraph: interrupted; applied batches are kept, run again to continue"
    with pytest.raises(ProcessLookupError):  # the checker has gone too
        os.kill(checker, 0)
    stopped_at = applied_events(db)
    assert 0 < stopped_at < 20_000
    done = subprocess.run([*cli, "ingest", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{20_000 - stopped_at} accepted, {stopped_at} duplicate" in done.stderr
    check = subprocess.run([*cli, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its parent to read its end
    does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@needs_two_cores
def test_a_killed_run_leaves_no_checker_behind_and_resumes(tmp_path: Path) -> None:
    path = demo_file(tmp_path / "events.jsonl", 20_000)
    toml = config(tmp_path / "idgraph.toml", ALWAYS)
    cli = [sys.executable, "-m", "idgraph.cli", "--config", str(toml)]

    def ingest(db: Path) -> subprocess.Popen[str]:
        command = [*cli, "--store", f"sqlite:///{db}", "ingest", str(path)]
        return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)

    killed = ingest(tmp_path / "killed.db")
    deadline = time.monotonic() + 120
    while applied_events(tmp_path / "killed.db") < 500 and time.monotonic() < deadline:
        time.sleep(0.02)
    [checker] = checkers(killed.pid)
    killed.kill()
    killed.communicate(timeout=60)
    deadline = time.monotonic() + 60  # it exits when it next writes to the closed pipe
    while running(checker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(checker), "the checker outlived the killed run"
    assert 0 < applied_events(tmp_path / "killed.db") < 20_000
    for db in ("killed.db", "clean.db"):
        run = ingest(tmp_path / db)
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert partition(tmp_path / "killed.db") == partition(tmp_path / "clean.db")


def test_the_second_process_starts_without_networkx() -> None:
    """What the second process imports delays the first batch: networkx (~150 ms to
    import) is for splits, which it never plans."""
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, idgraph.bulk, idgraph.jsonl; print(sorted(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'idgraph.jsonl'" in imported
    assert "'networkx'" not in imported
