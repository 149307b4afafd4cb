"""Encryption at rest from the command line, on the embedded store: a data key from the
environment or a key file, a clear refusal (exit 2, no traceback) without it or with
another, ``rotate-key``, segment filters on encrypted values, and a plaintext store
encrypted by restoring its backup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idgraph.cli import main
from tests.events import event

CITY = "Qwertyville-7731"
KEY = "a" * 64
NEW_KEY = "b" * 64


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_secret: str) -> str:
    """A store written with the key in key.txt (IDGRAPH_DATA_KEY_FILE), holding one
    customer whose city is :data:`CITY`."""
    monkeypatch.chdir(tmp_path)
    Path("key.txt").write_text(KEY + "\n")
    Path("new-key.txt").write_text(NEW_KEY + "\n")
    monkeypatch.setenv("IDGRAPH_DATA_KEY_FILE", "key.txt")
    monkeypatch.setenv("IDGRAPH_KEYRING", str(tmp_path / "idgraph.keyring"))
    Path("events.jsonl").write_text(
        json.dumps(event("email:ann@x.com", traits={"city": CITY, "age": 41})) + "\n"
    )
    url = f"sqlite:///{tmp_path / 'idgraph.db'}"
    assert main(["--store", url, "ingest", "events.jsonl"]) == 0
    return url


def city(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["--store", url, "resolve", "email:ann@x.com"]) == 0
    value: str = json.loads(capsys.readouterr().out)["traits"]["city"]["value"]
    return value


def refusal(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of a command that must exit 2 without a traceback."""
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_values_read_back_and_are_not_in_the_file(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert city(store, capsys) == CITY
    assert CITY.encode() not in (tmp_path / "idgraph.db").read_bytes()
    assert main(["--store", store, "backup", "store.backup"]) == 0
    assert CITY.encode() not in Path("store.backup").read_bytes()


def test_a_missing_or_wrong_key_is_refused(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IDGRAPH_DATA_KEY_FILE")
    assert "is encrypted at rest: configure its data key" in refusal(
        ["--store", store, "check"], capsys
    )
    monkeypatch.setenv("IDGRAPH_DATA_KEY", NEW_KEY)
    assert "the data key is not the key the keyring" in refusal(["--store", store, "check"], capsys)
    monkeypatch.setenv("IDGRAPH_DATA_KEY", "too short")
    assert "IDGRAPH_DATA_KEY must be at least 32 characters" in refusal(
        ["--store", store, "check"], capsys
    )


def test_rotate_key_rewraps_and_retires_the_old_key(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = Path("idgraph.keyring").read_bytes()
    assert main(["--store", store, "rotate-key", "--new-key-file", "new-key.txt"]) == 0
    assert "re-wrapped 1 data-encryption keys" in capsys.readouterr().err
    assert Path("idgraph.keyring").read_bytes() != keyring
    assert "not the key the keyring" in refusal(["--store", store, "check"], capsys)
    monkeypatch.setenv("IDGRAPH_DATA_KEY_FILE", "new-key.txt")
    assert city(store, capsys) == CITY
    assert "the new data key is the key in use" in refusal(
        ["--store", store, "rotate-key", "--new-key-file", "new-key.txt"], capsys
    )


def test_rotate_key_needs_a_configured_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDGRAPH_SECRET", "s" * 40)
    Path("new-key.txt").write_text(NEW_KEY)
    assert "no data key is configured" in refusal(
        ["--store", "plain.db", "rotate-key", "--new-key-file", "new-key.txt"], capsys
    )


def test_segment_filters_on_encrypted_values_are_refused_exists_works(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(
        ["--store", store, "segment", "count", "--filter", '{"trait": {"name": "age", "gte": 40}}'],
        capsys,
    )
    assert "filter.trait.gte: trait values are encrypted at rest" in err
    assert CITY not in err
    assert (
        main(
            [
                "--store",
                store,
                "segment",
                "count",
                "--filter",
                '{"trait": {"name": "city", "exists": true}}',
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "1"


def test_restoring_a_plaintext_backup_with_a_key_encrypts_it(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IDGRAPH_DATA_KEY_FILE")
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    assert main(["--store", plain, "ingest", "events.jsonl"]) == 0
    assert main(["--store", plain, "backup", "plain.backup"]) == 0
    monkeypatch.setenv("IDGRAPH_DATA_KEY_FILE", "key.txt")
    assert "holds data written without a data key" in refusal(["--store", plain, "check"], capsys)

    encrypted = f"sqlite:///{tmp_path / 'encrypted.db'}"
    assert main(["--store", encrypted, "restore", "plain.backup"]) == 0
    assert CITY.encode() not in (tmp_path / "encrypted.db").read_bytes()
    assert city(encrypted, capsys) == CITY


def test_segment_exports_give_trait_columns_decrypted(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    everyone = '{"all": []}'
    assert (
        main(["--store", store, "segment", "export", "-", "--filter", everyone, "--trait", "city"])
        == 0
    )
    assert CITY in capsys.readouterr().out
