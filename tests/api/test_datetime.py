"""``DateTime`` is RFC 3339 in the API as in ingest files: the same forms are accepted
and refused whether an event comes through ``ingest`` or ``idgraph ingest``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idgraph.cli import main
from tests.api.conftest import Api, codes
from tests.events import event

INGEST = """mutation($events: [EventInput!]!) {
  ingest(events: $events) { accepted rejected results { eventId outcome reason } }
}"""

SINCE = """query($since: DateTime) {
  resolve(identifier: {kind: "email", value: "a@x.com"}) {
    interactions(since: $since) { totalCount }
  }
}"""


async def test_lower_case_t_and_z_are_accepted(api: Api) -> None:
    events = [event("email:a@x.com", at="2026-03-01t12:00:00z", interaction={"type": "t"})]
    result = (await api.data(INGEST, {"events": events}))["ingest"]
    assert (result["accepted"], result["rejected"]) == (1, 0)
    since = await api.data(SINCE, {"since": "2026-03-01t11:59:59.5z"})
    assert since["resolve"]["interactions"]["totalCount"] == 1


@pytest.mark.parametrize(
    "timestamp", ["2026-W09-7T12:00Z", "2026-03-01T12:00Z", "20260301T120000Z"]
)
async def test_iso_only_timestamps_are_refused_naming_the_event_and_field(
    api: Api, timestamp: str
) -> None:
    events = [event("email:a@x.com"), event("email:b@x.com", at=timestamp)]
    result = await api.query(INGEST, {"events": events})
    assert codes(result) == ["BAD_USER_INPUT"]
    message = result["errors"][0]["message"]
    assert "[1].timestamp" in message
    assert "is not an RFC 3339 timestamp" in message
    assert "data" not in result


async def test_the_since_argument_reads_rfc_3339_only(api: Api) -> None:
    result = await api.query(SINCE, {"since": "2026-W09-7T12:00Z"})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "is not an RFC 3339 timestamp" in result["errors"][0]["message"]


def test_the_cli_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IDGRAPH_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    lines = [
        json.dumps(event("email:a@x.com", event_id="lower", at="2026-03-01t12:00:00z")),
        json.dumps(event("email:b@x.com", event_id="week", at="2026-W09-7T12:00Z")),
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["ingest", str(tmp_path / "events.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "event 'week': timestamp: '2026-W09-7T12:00Z' is not an RFC 3339 timestamp" in err
    assert "2 lines: 1 accepted, 0 duplicate, 1 rejected" in err
