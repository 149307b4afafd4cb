"""API keys and roles: 401 without a live key, FORBIDDEN per field for a role or a
purpose the key lacks, partial data for the rest; keys never in logs or messages."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from idgraph.config import Settings
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, codes, key_headers, new_key
from tests.events import event


@pytest.fixture
def settings() -> Settings:
    """Keys asked of the store on every request, so a revocation by another process (a
    KeyRing of its own here) is seen at once; tests/test_keys.py covers the trusted time."""
    defaults = Settings()
    return dataclasses.replace(
        defaults, api=dataclasses.replace(defaults.api, key_cache_seconds=0.0)
    )


RESOLVE = '{ resolve(identifier: {kind: "email", value: "a@x.com"}) { id } }'


def assert_401(response: object, secret: str = "") -> None:
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"] == "Bearer"  # type: ignore[attr-defined]
    [error] = response.json()["errors"]  # type: ignore[attr-defined]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert not secret or secret not in response.text  # type: ignore[attr-defined]


async def test_missing_unknown_and_revoked_keys_get_401(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    secret = await new_key(graph.store, settings, "gone", "reader")
    assert (await api.as_(secret).query(RESOLVE))["data"] == {"resolve": None}
    await KeyRing(graph.store, settings).revoke("gone")
    body = {"query": RESOLVE}
    assert_401(await api.client.post("/graphql", json=body))
    assert_401(await api.client.post("/graphql", json=body, headers={"Authorization": "Basic x"}))
    assert_401(await api.client.post("/graphql", json=body, headers={"Authorization": "Bearer "}))
    unknown = "idg_not-a-key"
    assert_401(await api.as_(unknown).post(RESOLVE), unknown)
    assert_401(await api.as_(secret).post(RESOLVE), secret)
    assert_401(await api.client.get("/metrics"))
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).status_code == 200


async def test_metrics_need_the_operate_permission(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    reader = await new_key(graph.store, settings, "r", "reader")
    refused = await api.client.get("/metrics", headers=key_headers(reader))
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN"}
    assert (await api.client.get("/metrics", headers=api.headers)).status_code == 200


async def test_a_purpose_the_key_may_not_use_is_forbidden(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com")])
    secret = await new_key(graph.store, settings, "support-only", "reader", ["support"])
    assert (await api.as_(secret, "support").data(RESOLVE))["resolve"]["id"].startswith("cus_")
    for purpose in ("marketing", "no-such-purpose", ""):
        result = await api.as_(secret, purpose).query(RESOLVE)
        assert result["data"] == {"resolve": None}
        assert codes(result) == ["FORBIDDEN"]
        assert result["errors"][0]["path"] == ["resolve"]


async def test_forbidden_fields_are_null_and_the_others_still_answer(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com")])
    reader = api.as_(await new_key(graph.store, settings, "r", "reader"))
    query = (
        '{ resolve(identifier: {kind: "email", value: "a@x.com"}) '
        "{ identifiers { edges { node { value } } } } "
        "conflicts { edges { cursor } } auditLog { edges { cursor } } }"
    )
    result = await reader.query(query)
    assert result["data"] == {
        "resolve": {"identifiers": {"edges": [{"node": {"value": "a@x.com"}}]}},
        "conflicts": None,
        "auditLog": None,
    }
    assert sorted((e["path"][0], e["extensions"]["code"]) for e in result["errors"]) == [
        ("auditLog", "FORBIDDEN"),
        ("conflicts", "FORBIDDEN"),
    ]
    assert "'reader' has no 'steward' permission" in str(result["errors"])


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("writer", {"ingest", "setConsent"}),
        ("steward", {"setConsent", "unlink"}),
        ("reader", set()),
        ("resolver", set()),
        ("admin", {"ingest", "setConsent", "unlink", "forget"}),
    ],
)
async def test_mutations_by_role(
    api: Api, graph: IdentityGraph, settings: Settings, role: str, allowed: set[str]
) -> None:
    caller = api.as_(await new_key(graph.store, settings, "caller", role))
    mutations = {
        "ingest": "ingest(events: []) { accepted }",
        "setConsent": 'setConsent(subject: {kind: "email", value: "zz"}, purpose: "support", '
        'status: GRANTED, source: "t") { userErrors { code } }',
        "unlink": 'unlink(a: {kind: "email", value: "x@x.com"}, b: {kind: "email", '
        'value: "y@x.com"}) { userErrors { code } }',
        "forget": 'forget(identifier: {kind: "email", value: "x@x.com"}) { userErrors { code } }',
    }
    result = await caller.query("mutation { " + " ".join(mutations.values()) + " }")
    answered = {name for name in mutations if result["data"][name] is not None}
    forbidden = {
        e["path"][0] for e in result.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"
    }
    assert answered == allowed
    assert forbidden == set(mutations) - allowed


async def test_the_actor_is_the_key_name(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com"), event("email:b@x.com")])
    steward = api.as_(await new_key(graph.store, settings, "jo.steward", "steward"))
    link = (
        'mutation { link(a: {kind: "email", value: "a@x.com"}, '
        'b: {kind: "email", value: "b@x.com"}) { actor } }'
    )
    assert (await steward.data(link, **{"X-Actor": "someone-else"}))["link"] == {
        "actor": "jo.steward"
    }


async def test_keys_never_appear_in_logs_or_error_messages(
    api: Api, graph: IdentityGraph, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await graph.ingest([event("email:a@x.com")])
    secret = await new_key(graph.store, settings, "quiet", "resolver", ["support"])
    responses = [
        (await api.as_(secret).post(RESOLVE)).text,
        (await api.as_(secret, "marketing").post(RESOLVE)).text,
        (await api.as_(secret).post("{ resolve(identifier: ")).text,
        (await api.as_(secret).post("{ conflicts { edges { cursor } } }")).text,
        (await api.as_(secret + "x").post(RESOLVE)).text,
        (await api.client.get("/metrics", headers=key_headers(secret))).text,
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in [*responses, logged]:
        assert secret not in text
        assert secret[4:20] not in text


async def test_every_field_a_key_may_not_read_is_refused_on_its_own(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    """Permissions are decided once per request; refusals still reach each field."""
    await graph.ingest([event("email:a@x.com"), event("email:b@x.com")])
    resolver = api.as_(await new_key(graph.store, settings, "lookup", "resolver"))
    result = await resolver.query(
        '{ a: resolve(identifier: {kind: "email", value: "a@x.com"}) { id size createdAt } '
        'b: resolve(identifier: {kind: "email", value: "b@x.com"}) { id size } '
        'c: resolve(identifier: {kind: "email", value: "a@x.com"}) { id } }'
    )
    # Customer's fields are non-null: a refused one nulls its customer, not the others;
    # the first refused field of each customer is named (execution stops there)
    assert result["data"] == {
        "a": None,
        "b": None,
        "c": {"id": await graph.customer_of("email:a@x.com")},
    }
    refused = sorted(tuple(e["path"]) for e in result["errors"])
    assert refused == [("a", "size"), ("b", "size")]
    assert set(codes(result)) == {"FORBIDDEN"}
