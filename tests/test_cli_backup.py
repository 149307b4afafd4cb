"""``idgraph backup`` and ``idgraph restore`` end to end on the embedded store: a round
trip, and every way a bad file or a full target is refused with the target untouched."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path

import pytest

from idgraph.cli import main
from idgraph.demo import DemoGenerator
from tests.backups import rewritten, with_a_customer_twice
from tests.events import event

GONE = event("email:gone@x.com", "cookie:gone", event_id="gone")


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_secret: str) -> str:
    """A store with a demo graph and one erased person; its backup is at backup.gz."""
    monkeypatch.chdir(tmp_path)
    events = [json.dumps(e) for e in DemoGenerator(50, seed=7).events(400)]
    Path("events.jsonl").write_text("\n".join([*events, json.dumps(GONE)]) + "\n")
    url = f"sqlite:///{tmp_path / 'source.db'}"
    assert main(["--store", url, "ingest", "--quiet", "events.jsonl"]) in (0, 1)
    assert main(["--store", url, "forget", "email:gone@x.com"]) == 0
    assert main(["--store", url, "backup", "backup.gz"]) == 0
    return url


def target(tmp_path: Path, name: str = "target.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def csv_export(url: str, name: str) -> list[str]:
    """Every identity node and its customer id, sorted (each store lists its own way)."""
    assert main(["--store", url, "export", "--format", "csv", name]) == 0
    return sorted(Path(name).read_text().splitlines())


def test_restore_gives_the_same_graph_and_keeps_refusing_the_erased(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stat.S_IMODE(Path("backup.gz").stat().st_mode) == 0o600
    assert main(["--store", target(tmp_path), "restore", "backup.gz"]) == 0
    assert "restored the backup of a sqlite store" in capsys.readouterr().err
    assert csv_export(target(tmp_path), "copy.csv") == csv_export(source, "orig.csv")
    assert main(["--store", target(tmp_path), "check"]) == 0
    Path("gone.jsonl").write_text(json.dumps({**GONE, "id": "gone-again"}) + "\n")
    capsys.readouterr()
    assert main(["--store", target(tmp_path), "ingest", "gone.jsonl"]) == 1
    assert "erased" in capsys.readouterr().err


def rewrite(path: Path, change: object) -> Path:
    """The backup with its decompressed lines passed through ``change``."""
    with gzip.open("backup.gz", "rb") as file:
        lines = file.read().splitlines(keepends=True)
    with gzip.open(path, "wb") as out:
        out.writelines(change(lines))  # type: ignore[operator]
    return path


def tamper(lines: list[bytes]) -> list[bytes]:
    """One digit of a date changed: every record still reads, only the checksum tells."""
    assert b"2026-" in lines[2]
    lines[2] = lines[2].replace(b"2026-", b"2025-", 1)
    return lines


def wrong_version(lines: list[bytes]) -> list[bytes]:
    lines[0] = lines[0].replace(b'"version":1', b'"version":99')
    return lines


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: rewrite(p, tamper), "fails its checksum"),
        (lambda p: rewrite(p, lambda lines: lines[:-1]), "its end line is missing"),
        (lambda p: rewrite(p, wrong_version), "format version 99 is unknown"),
        (
            lambda p: rewrite(p, lambda ls: [ls[0], b'{"type":"x","record":1}\n', *ls[1:]]),
            "unknown record type 'x'",
        ),
        (
            lambda p: p.write_bytes(Path("backup.gz").read_bytes()[:-500]) and p,
            "not a complete backup",
        ),
        (lambda p: p.write_text("hello\n") and p, "not a complete backup"),
        (lambda p: p, "cannot read the backup"),
    ],
    ids=["tampered", "no-end", "version", "unknown-type", "truncated-gzip", "not-gzip", "none"],
)
def test_a_bad_file_is_refused_and_the_target_left_untouched(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, message: str
) -> None:
    bad = make(tmp_path / "bad.gz")  # type: ignore[operator]
    assert main(["--store", target(tmp_path), "restore", str(bad)]) == 2
    assert message in capsys.readouterr().err
    assert csv_export(target(tmp_path), "after.csv") == ["key,kind,value,customer_id"]


def test_a_store_that_is_not_empty_is_refused_unless_forced(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = target(tmp_path, "other.db")
    Path("one.jsonl").write_text(json.dumps(event("email:other@x.com")) + "\n")
    assert main(["--store", other, "ingest", "one.jsonl"]) == 0
    capsys.readouterr()
    assert main(["--store", other, "restore", "backup.gz"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert any(line.startswith("email:other@x.com,") for line in csv_export(other, "kept.csv"))
    assert main(["--store", other, "restore", "--force", "backup.gz"]) == 0
    assert csv_export(other, "forced.csv") == csv_export(source, "orig.csv")
    assert main(["--store", other, "check"]) == 0


def test_a_forced_restore_that_fails_part_way_leaves_the_target_as_it_was(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file passes every check, but its last record is refused: one transaction, so
    the target keeps what it held (even what --force was to delete)."""
    other = target(tmp_path, "other.db")
    Path("one.jsonl").write_text(json.dumps(event("email:other@x.com")) + "\n")
    assert main(["--store", other, "ingest", "one.jsonl"]) == 0
    before = csv_export(other, "before.csv")
    bad = rewritten(Path("backup.gz"), tmp_path / "bad.gz", with_a_customer_twice)
    capsys.readouterr()
    assert main(["--store", other, "restore", "--force", str(bad)]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert csv_export(other, "after.csv") == before
    assert main(["--store", other, "check"]) == 0


def test_restore_under_another_server_secret_is_refused_when_the_backup_erased_someone(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loaded under another secret, the erasure record would no longer match the erased
    identifiers: they would be accepted again. The file says whose secret it needs."""
    monkeypatch.setenv("IDGRAPH_SECRET", "another-server-secret-0123456789abcdef")
    capsys.readouterr()
    assert main(["--store", target(tmp_path), "restore", "backup.gz"]) == 2
    assert "erasure record written under another server secret" in capsys.readouterr().err
    assert main(["--store", target(tmp_path), "check"]) == 0
    assert "(0 nodes, 0 customers" in capsys.readouterr().out


def test_a_refused_restore_into_a_new_file_leaves_no_file_behind(
    source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = rewritten(Path("backup.gz"), tmp_path / "bad.gz", with_a_customer_twice)
    assert main(["--store", target(tmp_path, "new.db"), "restore", str(bad)]) == 2
    assert "nothing was written" in capsys.readouterr().err
    assert not [file.name for file in tmp_path.iterdir() if file.name.startswith("new.db")]
