"""``idgraph purge`` end to end on the embedded store: the dry run counts and changes
nothing, ``--apply`` deletes and records it, a bad ``[retention]`` is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from idgraph.cli import main
from tests.events import event

OLD = "2020-01-01T00:00:00Z"
RECENT = (datetime.now(UTC) - timedelta(days=1)).isoformat()
EVENTS = [
    event("cookie:gone", at=OLD, interaction={"type": "page_view"}),
    event("email:a@x.com", "cookie:kept", at=OLD, interaction={"type": "page_view"}),
    event("email:a@x.com", at=RECENT, interaction={"type": "purchase"}),
]
# Ingested a moment ago: only the event times are old.
RETENTION = "[retention]\ninteractions_days = 30\nanonymous_customers_days = 30\n"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_secret: str) -> str:
    monkeypatch.chdir(tmp_path)
    Path("events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    url = f"sqlite:///{tmp_path / 'idgraph.db'}"
    assert main(["--store", url, "ingest", "--quiet", "events.jsonl"]) == 0
    return url


def table(out: str) -> dict[str, int]:
    """The purge table's counts, by policy."""
    rows = [line.split() for line in out.splitlines()[1:]]
    return {row[0]: int(row[-1]) for row in rows}


def test_a_dry_run_prints_the_counts_and_deletes_nothing(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("idgraph.toml").write_text(RETENTION)
    capsys.readouterr()

    assert main(["--store", store, "purge"]) == 0
    out, err = capsys.readouterr()

    assert out.splitlines()[0].split() == ["policy", "older", "than", "to", "delete"]
    # Anonymous customers are judged by when idgraph last changed them too: cookie:gone
    # was made a moment ago, so it is active.
    assert table(out) == {"anonymous_customers": 0, "interactions": 2}
    assert "dry run" in err
    assert main(["--store", store, "purge"]) == 0
    assert table(capsys.readouterr().out) == {"anonymous_customers": 0, "interactions": 2}


def test_apply_deletes_and_writes_an_audit_entry(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("idgraph.toml").write_text(RETENTION + "audit_days = 1\nbatch_size = 1\n")
    capsys.readouterr()

    assert main(["--store", store, "purge", "--apply"]) == 0
    out = capsys.readouterr().out

    assert out.splitlines()[0].split()[-1] == "deleted"
    assert table(out) == {"anonymous_customers": 0, "interactions": 2, "audit": 0}
    assert main(["--store", store, "check"]) == 0
    assert capsys.readouterr().out.startswith("ok: every invariant holds")
    assert main(["--store", store, "purge"]) == 0
    assert table(capsys.readouterr().out) == {
        "anonymous_customers": 0,
        "interactions": 0,
        "audit": 0,
    }
    assert main(["--store", store, "resolve", "email:a@x.com"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["customer_id"]


def test_no_policy_purges_nothing(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    assert main(["--store", store, "purge", "--apply"]) == 0

    assert "nothing to purge" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("interactions_days = 0", "retention.interactions_days: Input should be greater than 0"),
        ("audit_days = '30'", "retention.audit_days: Input should be a valid integer"),
        ("schedule = 'daily'", "retention.schedule: must be a number of hours or an interval"),
        ("keep_expired = false", "retention.keep_expired: unknown setting (did you mean"),
    ],
)
def test_a_bad_retention_setting_is_refused_clearly(
    store: str, setting: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("idgraph.toml").write_text(f"[retention]\n{setting}\n")
    capsys.readouterr()

    assert main(["--store", store, "purge", "--apply"]) == 2

    assert problem in capsys.readouterr().err
