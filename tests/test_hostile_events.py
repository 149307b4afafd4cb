"""A corpus of hostile lines, one case each (tests/data/hostile-events.jsonl), ingested
between valid events through the CLI and through the API: every bad line is refused on
its own with its line, field and reason; the valid events around it are stored.

The corpus is bytes, not text: some lines are not UTF-8. Add a case by appending a line
to the file and its expectation to CASES.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from idgraph.cli import main
from idgraph.config import Settings
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore
from tests.api.conftest import Api, codes, open_api
from tests.conftest import ERASURE_KEY
from tests.events import event

# API apps read the server secret from the environment, as tests/api does (no secret
# file written into the working directory).
pytestmark = pytest.mark.usefixtures("server_secret")

CORPUS = Path(__file__).parent / "data" / "hostile-events.jsonl"

# How the API's ``ingest`` refuses a line (the CLI refuses every one on its own):
EVENT = "event"  # that event alone, with the same reason as the CLI
SCHEMA = "schema"  # the GraphQL input types refuse the request: BAD_USER_INPUT
STRICT = "strict"  # NaN/Infinity: that event alone, or HTTP 400 from a strict body reader
BODY = "body"  # not JSON as an HTTP body either: the HTTP edge answers 400 (not here)

# In corpus order: the start of the CLI's message, and how the API refuses the line.
CASES: list[tuple[str, str]] = [
    # bytes that are not UTF-8
    ("invalid JSON: 'utf-8' codec can't decode byte 0xff", BODY),
    ("invalid JSON: 'utf-8' codec can't decode byte 0xed", BODY),  # an encoded surrogate
    ("invalid JSON: 'utf-8' codec can't decode byte 0xc3", BODY),
    ("invalid JSON: 'utf-8' codec can't decode byte 0xc0", BODY),
    ("invalid JSON: 'utf-8' codec can't decode byte 0xfc", BODY),
    # lone surrogates, in every field
    ("event 'h-surrogate-value': identifiers[0].value: contains a lone surrogate (U+D800)", EVENT),
    ("id: contains a lone surrogate (U+DC00)", EVENT),
    ("event 'h-surrogate-source': source: contains a lone surrogate (U+D800)", EVENT),
    ("event 'h-surrogate-kind': identifiers[0].kind: kind 'cook\\ud800ie' must match", EVENT),
    ("event 'h-surrogate-email': identifiers[0].value: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-phone': identifiers[0].value: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-trait-name': traits.'na\\ud800me': names are 1-64 printable", EVENT),
    ("event 'h-surrogate-trait-value': traits.name: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-trait-nested': traits.tags[1].deep[0]: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-property-value': interaction.properties.page: contains a lone", EVENT),
    ("event 'h-surrogate-property-key': interaction.properties.'\\ud800': name contains", EVENT),
    ("event 'h-surrogate-device-id': device.id: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-device-os': device.os: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-account-system': account.system: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-account-id': account.id: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-consent-purpose': consent.purpose: is required and must match", EVENT),
    ("event 'h-surrogate-consent-status': consent.status: must be 'granted' or 'denied'", SCHEMA),
    ("event 'h-surrogate-interaction-type': interaction.type: is required and must match", EVENT),
    ("event 'h-surrogate-channel': interaction.channel: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-unknown-field': 'x\\ud800': unknown field", SCHEMA),
    ("event 'h-surrogate-pair-reversed': identifiers[0].value: contains a lone surrogate", EVENT),
    ("event 'h-surrogate-timestamp': timestamp: '2024-01-01T00:00:00Z\\ud800' is not an", SCHEMA),
    # control characters
    ("id: contains a control character (U+0000)", EVENT),
    ("event 'h-escape-source': source: contains a control character (U+001B)", EVENT),
    ("event 'h-newline-kind': identifiers[0].kind: kind 'cookie\\n' must match", EVENT),
    ("event 'h-bell-value': identifiers[0].value: contains a control character (U+0007)", EVENT),
    ("event 'h-c1-email': identifiers[0].value: contains a control character (U+0085)", EVENT),
    ("event 'h-nul-device-id': device.id: contains a control character (U+0000)", EVENT),
    ("event 'h-del-account-id': account.id: contains a control character (U+007F)", EVENT),
    ("event 'h-tab-trait-name': traits.'first\\tname': names are 1-64 printable", EVENT),
    ("event 'h-nul-trait-value': traits.note: contains a control character (U+0000)", EVENT),
    ("event 'h-escape-property-value': interaction.properties.ua: contains a control", EVENT),
    ("event 'h-del-channel': interaction.channel: contains a control character (U+007F)", EVENT),
    ("event 'h-newline-device-model': device.model: contains a control character", EVENT),
    ("event 'h-control-unknown-field-name': 'x\\x01': unknown field", SCHEMA),
    # dates and offsets
    ("event 'h-timestamp-overflow-high': timestamp: '9999-12-31T23:59:59-23:59' is outside", EVENT),
    ("event 'h-timestamp-overflow-low': timestamp: '0001-01-01T00:00:00+23:59' is outside", EVENT),
    ("event 'h-timestamp-before-1970': timestamp: '1969-12-31T23:59:59Z' is outside", EVENT),
    ("event 'h-timestamp-year-1': timestamp: '0001-01-01T00:00:00Z' is outside", EVENT),
    ("event 'h-timestamp-future': timestamp: '2999-01-01T00:00:00Z' is more than 5 minutes", EVENT),
    ("event 'h-timestamp-max': timestamp: '9999-12-31T23:59:59.999999Z' is more than 5", EVENT),
    ("event 'h-timestamp-no-offset': timestamp: needs a time zone offset", SCHEMA),
    ("event 'h-timestamp-number': timestamp: must be an RFC 3339 string, got number", SCHEMA),
    ("event 'h-timestamp-garbage': timestamp: '2024-13-45T25:61:61Z' is not an RFC 3339", SCHEMA),
    ("event 'h-timestamp-huge-string': timestamp: '2024-01-01T00:00:00Z2024-01-01", SCHEMA),
    ("event 'h-expires-overflow-high': consent.expiresAt: '9999-12-31T23:59:59-23:59' is", EVENT),
    ("event 'h-expires-overflow-low': consent.expiresAt: '0001-01-01T00:00:00+01:00' is", EVENT),
    ("event 'h-expires-before-1970': consent.expiresAt: '1900-01-01T00:00:00Z' is outside", EVENT),
    ("event 'h-expires-object': consent.expiresAt: must be an RFC 3339 string, got object", SCHEMA),
    # nesting
    ("invalid JSON: nested too deeply", BODY),  # 1,000 levels
    ("invalid JSON: nested too deeply", BODY),  # 10,000 levels
    ("event 'h-nesting-20-traits': traits.x" + "[0]" * 15 + ": nested deeper than 16", EVENT),
    ("event 'h-nesting-30-properties': interaction.properties.x" + ".k" * 15 + ": nested", EVENT),
    # numbers
    ("invalid JSON: an integer with over 4,300 digits", BODY),
    ("event 'h-int-4000-digits': traits.n: integer out of the 64-bit range", EVENT),
    ("event 'h-int-2-64': interaction.properties.amount: integer out of the 64-bit range", EVENT),
    ("event 'h-int-below-int64': traits.n: integer out of the 64-bit range", EVENT),
    ("invalid JSON: NaN is not a JSON number", STRICT),
    ("invalid JSON: Infinity is not a JSON number", STRICT),
    ("invalid JSON: -Infinity is not a JSON number", STRICT),
    ("event 'h-float-overflow': traits.score: must be a finite number, got Infinity", EVENT),
    ("event 'h-float-overflow-negative': interaction.properties.x: must be a finite", EVENT),
    # wrong types and shapes
    ("event 'h-device-os-number': device.os: must be a string, got number", SCHEMA),
    ("event 'h-identifiers-string': identifiers: must be a list, got string", SCHEMA),
    ("event 'h-identifier-value-number': identifiers[0].value: must be a string", SCHEMA),
    ("event 'h-identifier-kind-null': identifiers[0].kind: must be a string, got null", SCHEMA),
    ("event 'h-traits-array': traits: must be an object, got array", EVENT),
    ("event 'h-properties-string': interaction.properties: must be an object, got string", EVENT),
    ("event 'h-properties-false': interaction.properties: must be an object, got boolean", EVENT),
    ("event 'h-consent-string': consent: must be an object {purpose, status, expiresAt?}", SCHEMA),
    ("event 'h-channel-array': interaction.channel: must be a string, got array", SCHEMA),
    ("event 'h-account-id-bool': account.id: must be a string, got boolean", SCHEMA),
    ("event 'h-unknown-field-object': extra: unknown field", SCHEMA),
    ("id: must be a non-empty string", SCHEMA),
    ("event 'h-source-number': source: must be a non-empty string", SCHEMA),
    ("event 'h-source-too-long': source: longer than 256 characters", EVENT),
    ("id: longer than 256 characters", EVENT),
    ("an event must be a JSON object, got array", SCHEMA),
    ("an event must be a JSON object, got string", SCHEMA),
    ("an event must be a JSON object, got null", SCHEMA),
    ("invalid JSON: Expecting value", BODY),
    ("invalid JSON: Extra data", BODY),
    ("event 'h-trait-name-too-long': traits.'" + "n" * 63, EVENT),
    ("event 'h-trait-name-empty': traits.'': names are 1-64 printable characters", EVENT),
    ("event 'h-kind-too-long': identifiers[0].kind: kind '" + "k" * 64 + "' must match", EVENT),
]


def corpus() -> list[bytes]:
    lines = CORPUS.read_bytes().splitlines()
    assert len(lines) == len(CASES)
    return lines


def valid(n: int) -> bytes:
    return json.dumps(
        event(f"cookie:ok-{n}", event_id=f"ok-{n}", at="2024-01-01T00:00:00Z")
    ).encode()


def test_the_corpus_covers_every_class_with_distinct_cases() -> None:
    lines = corpus()
    assert len(set(lines)) == len(lines) >= 40


# ---- CLI -----------------------------------------------------------------------------


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("IDGRAPH_STORE", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    return path


async def customers_of(store: Store, keys: list[str]) -> dict[str, str]:
    try:
        return await store.customer_ids_of(keys)
    finally:
        await store.close()


def test_cli_refuses_each_hostile_line_and_stores_the_valid_ones(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(valid(n) + b"\n" + line + b"\n" for n, line in enumerate(corpus())))
    bad = len(CASES)
    for run, counts in (("first", f"{bad} accepted, 0"), ("again", f"0 accepted, {bad}")):
        assert main(["ingest", str(path)]) == 1, run
        err = capsys.readouterr().err
        assert "Traceback" not in err
        *errors, summary = err.splitlines()
        assert len(errors) == bad
        for n, (error, (message, _)) in enumerate(zip(errors, CASES, strict=True)):
            assert error.startswith(f"{path}:{2 * n + 2}: {message}"), error
        assert f"{2 * bad} lines: {counts} duplicate, {bad} rejected" in summary
    keys = [f"cookie:ok-{n}" for n in range(len(CASES))]
    stored = asyncio.run(customers_of(SqliteStore(store_path, erasure_key=ERASURE_KEY), keys))
    assert sorted(stored) == sorted(keys)


# ---- API -----------------------------------------------------------------------------


@pytest.fixture
async def api(settings: Settings, store: Store) -> AsyncIterator[Api]:
    async for opened in open_api(settings, store):
        yield opened


INGEST = """mutation($events: [EventInput!]!) {
  ingest(events: $events) { accepted rejected results { eventId outcome reason } }
}"""


def as_api_event(line: bytes) -> bytes:
    """The line as an ``EventInput`` variable: consent statuses are GraphQL enum values."""
    return line.replace(b'"status": "granted"', b'"status": "GRANTED"')


async def post_events(api: Api, events: list[bytes]) -> tuple[int, dict[str, object]]:
    """Posts the events as they are, byte for byte, inside a GraphQL request body."""
    body = b'{"query": %s, "variables": {"events": [%s]}}' % (
        json.dumps(INGEST).encode(),
        b", ".join(events),
    )
    response = await api.client.post(
        "/graphql", content=body, headers={**api.headers, "Content-Type": "application/json"}
    )
    return response.status_code, response.json()


async def test_api_applies_the_valid_events_of_a_batch_and_rejects_each_hostile_one(
    api: Api, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    lines = corpus()
    cases = [(n, message) for n, (message, how) in enumerate(CASES) if how == EVENT]
    batch = [part for n, _ in cases for part in (valid(n), as_api_event(lines[n]))]
    status, result = await post_events(api, batch)
    assert status == 200
    assert "errors" not in result, result
    ingest = result["data"]["ingest"]  # type: ignore[index]
    assert (ingest["accepted"], ingest["rejected"]) == (len(cases), len(cases))
    for (n, message), ok, bad in zip(cases, *[iter(ingest["results"])] * 2, strict=True):
        assert (ok["eventId"], ok["outcome"]) == (f"ok-{n}", "ACCEPTED")
        assert bad["outcome"] == "REJECTED"
        assert bad["reason"].startswith(message), bad["reason"]
    keys = [f"cookie:ok-{n}" for n, _ in cases]
    assert sorted(await store.customer_ids_of(keys)) == sorted(keys)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_api_refuses_an_event_with_a_4400_digit_integer_alone(api: Api) -> None:
    """Python reads no integer over 4,300 digits: the HTTP edge reads it as out of range,
    so the event beside it is still applied."""
    huge = b'{"id": "huge", "timestamp": "2026-01-01T00:00:00Z", "source": "web", ' + (
        b'"identifiers": [{"kind": "cookie", "value": "huge"}], "traits": {"n": -%s}}'
        % (b"9" * 4_400)
    )
    status, result = await post_events(api, [valid(0), huge])
    assert status == 200
    ingest = result["data"]["ingest"]  # type: ignore[index]
    assert (ingest["accepted"], ingest["rejected"]) == (1, 1)
    assert "traits.n: integer out of the 64-bit range" in ingest["results"][1]["reason"]


async def test_api_refuses_an_event_nested_a_thousand_levels_alone(api: Api) -> None:
    """Too deep for the event format, not for a request body: the event beside it is
    applied (a body nested over ``max_json_depth`` is refused whole, with HTTP 400)."""
    deep = b"[" * 1_000 + b"]" * 1_000
    nested = b'{"id": "deep", "timestamp": "2026-01-01T00:00:00Z", "source": "web", ' + (
        b'"identifiers": [{"kind": "cookie", "value": "deep"}], "traits": {"x": %s}}' % deep
    )
    status, result = await post_events(api, [valid(0), nested])
    assert status == 200
    ingest = result["data"]["ingest"]  # type: ignore[index]
    assert (ingest["accepted"], ingest["rejected"]) == (1, 1)
    assert "traits.x" in ingest["results"][1]["reason"]
    assert "nested deeper than 16" in ingest["results"][1]["reason"]


async def test_api_refuses_ill_typed_events_as_bad_input_and_non_numbers_per_event(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    lines = corpus()
    for n, (_, how) in enumerate(CASES):
        if how not in (SCHEMA, STRICT):
            continue
        status, result = await post_events(api, [valid(n), as_api_event(lines[n])])
        if how == SCHEMA:
            assert status == 200
            assert set(codes(result)) == {"BAD_USER_INPUT"}, (n, result)
        elif status != 400:
            outcomes = result["data"]["ingest"]["results"]  # type: ignore[index]
            assert [o["outcome"] for o in outcomes] == ["ACCEPTED", "REJECTED"]
            assert "must be a finite number" in outcomes[1]["reason"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


C = '{kind: "cookie", value: "c"}'
IDENTIFIER_OPERATIONS = {
    "resolve": "resolve(identifier: $i) { id }",
    "explainLink": f"explainLink(a: $i, b: {C}) {{ __typename }}",
    "setConsent": 'setConsent(subject: $i, purpose: "marketing", status: GRANTED, source: "web") '
    "{ userErrors { code } }",
    "forget": "forget(identifier: $i) { userErrors { code } }",
    "link": f"link(a: $i, b: {C}) {{ userErrors {{ code }} }}",
    "unlink": f"unlink(a: {C}, b: $i) {{ userErrors {{ code }} }}",
}


async def post_json(api: Api, query: str, variables: dict[str, object]) -> dict[str, Any]:
    """Like ``api.query``, but lone surrogates travel as JSON escapes (``\\ud800``)."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await api.client.post(
        "/graphql", content=body, headers={**api.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("cookie", "a\ud800b"),
        ("email", "a\x00@example.com"),
        ("phone", "+1650\x1b2530000"),
        ("device", "d\x85-1"),
        ("account", "shop:4\udc002"),
        ("account", "sh\x07op:42"),
        ("cookie\n", "c"),
    ],
)
async def test_identifiers_with_unacceptable_text_are_bad_user_input_everywhere(
    api: Api, kind: str, value: str
) -> None:
    variables: dict[str, object] = {"i": {"kind": kind, "value": value}}
    for name, field in IDENTIFIER_OPERATIONS.items():
        operation = "query" if name in ("resolve", "explainLink") else "mutation"
        result = await post_json(api, f"{operation}($i: IdentifierInput!) {{ {field} }}", variables)
        user_errors = (result["data"][name] or {}).get("userErrors", [])
        found = codes(result) + [e["code"] for e in user_errors]
        assert found == ["BAD_USER_INPUT"], (name, result)


async def test_consent_with_an_unacceptable_source_or_expiry_is_bad_user_input(api: Api) -> None:
    query = """mutation($source: String!, $expires: DateTime) {
      setConsent(subject: {kind: "cookie", value: "c"}, purpose: "marketing", status: GRANTED,
                 source: $source, expiresAt: $expires) { userErrors { code message } }
    }"""
    result = await post_json(api, query, {"source": "w\ud800b"})
    assert "data" not in result  # no store could keep it: refused before anything runs
    assert codes(result) == ["BAD_USER_INPUT"]
    assert "$source: contains a lone surrogate (U+D800)" in result["errors"][0]["message"]
    cases: list[tuple[dict[str, object], str]] = [
        ({"source": "web\x1b[2J"}, "source: contains a control character (U+001B)"),
        (
            {"source": "web", "expires": "9999-12-31T23:59:59-23:59"},
            "consent.expiresAt: '9999-12-31T23:59:59-23:59' is outside 1970-01-01 to 9999-12-31",
        ),
    ]
    for variables, reason in cases:
        result = await post_json(api, query, variables)
        [error] = result["data"]["setConsent"]["userErrors"]
        assert error["code"] == "BAD_USER_INPUT"
        assert reason in error["message"]
