"""Encryption at rest over every backend: trait values and interaction properties never
reach the store, its files or a backup in plaintext, yet read back through the API; a
store written with a key refuses to open without it; rotation re-wraps the keys; and
erasure shreds the erased nodes' keys, so a backup taken before reads back without them.
"""

from __future__ import annotations

import gzip
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from idgraph import retention
from idgraph.backup import restore, write_backup
from idgraph.config import RetentionSettings, Settings
from idgraph.domain.model import Outcome, utcnow
from idgraph.domain.retention import Policy
from idgraph.encryption.datakey import DataKey
from idgraph.encryption.keyring import Keyring
from idgraph.errors import ConfigError
from idgraph.service import IdentityGraph
from idgraph.store.encrypted import EncryptedStore, refuse_if_encrypted
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore
from tests.api.conftest import open_api
from tests.backups import rewritten
from tests.conftest import neo4j_settings, open_test_store
from tests.events import event

KEY = DataKey(b"tests-only-data-key-0123456789abcdef")
NEW_KEY = DataKey(b"tests-only-rotated-key-0123456789abcdef")
CITY = "Qwertyville-7731"  # values a plaintext search must not find
NOTE = "left-handed-pangolin-4412"
OTHER_CITY = "Zxcvbnburg-9902"
OTHER_NOTE = "sleepy-axolotl-5520"


def person(email: str, city: str, note: str) -> dict[str, Any]:
    return event(
        email,
        "cookie:c-" + email,
        traits={"city": city, "age": 41},
        interaction={"type": "purchase", "properties": {"note": note, "items": [1, 2]}},
    )


async def sealed(store: Store, keyring: Path, key: DataKey = KEY) -> EncryptedStore:
    return await EncryptedStore.open(store, Keyring(keyring, key))


async def fill(store: Store) -> IdentityGraph:
    graph = IdentityGraph(store, Settings())
    result = await graph.ingest(
        [person("email:ann@x.com", CITY, NOTE), person("email:bob@x.com", OTHER_CITY, OTHER_NOTE)]
    )
    assert result.count(Outcome.ACCEPTED) == 2
    return graph


async def read_back(store: Store, email: str) -> tuple[dict[str, Any], list[Any]]:
    """A customer's traits (name → value) and interaction properties, as the API gives
    them over HTTP."""
    query = (
        'query($v: String!) { resolve(identifier: {kind: "email", value: $v}) { ... on '
        "Customer { traits { edges { node { name value } } } "
        "interactions { edges { node { properties } } } } } }"
    )
    async for api in open_api(Settings(), store, admin=f"reader-{os.urandom(4).hex()}"):
        data = await api.data(query, {"v": email.removeprefix("email:")})
    customer = data["resolve"]
    traits = {e["node"]["name"]: e["node"]["value"] for e in customer["traits"]["edges"]}
    return traits, [e["node"]["properties"] for e in customer["interactions"]["edges"]]


async def raw_text(store: Store) -> str:
    """Everything the store holds, as a reader without the key sees it: the SQLite
    files' bytes, or every node and relationship property by a raw Cypher read."""
    if isinstance(store, SqliteStore):
        files = [Path(store.path), Path(store.path + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists()).decode("latin-1")
    from neo4j import AsyncGraphDatabase

    settings = neo4j_settings()
    async with AsyncGraphDatabase.driver(
        os.environ["NEO4J_URI"], auth=(settings.user, settings.password)
    ) as driver:
        records, _, _ = await driver.execute_query(
            "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN properties(n) AS n, properties(r) AS r",
            database_=settings.database,
        )
    return repr([record.data() for record in records])


def plaintext_in(text: str) -> list[str]:
    return [v for v in (CITY, NOTE, OTHER_CITY, OTHER_NOTE) if v in text]


async def backup(store: Store, path: Path) -> Path:
    with path.open("wb") as out:
        await write_backup(store, out, batch_size=2)
    return path


async def test_values_are_sealed_at_rest_and_in_backups_yet_read_back(
    store: Store, tmp_path: Path
) -> None:
    encrypted = await sealed(store, tmp_path / "idgraph.keyring")
    await fill(encrypted)

    assert await read_back(encrypted, "email:ann@x.com") == (
        {"age": 41, "city": CITY},
        [{"items": [1, 2], "note": NOTE}],
    )
    assert plaintext_in(await raw_text(store)) == []
    file = await backup(encrypted, tmp_path / "store.backup")
    assert plaintext_in(gzip.decompress(file.read_bytes()).decode()) == []

    copy = await sealed(
        await open_test_store("sqlite", tmp_path / "copy"), tmp_path / "idgraph.keyring"
    )
    try:
        await restore(file, copy, batch_size=2)
        assert plaintext_in(await raw_text(copy.inner)) == []
        assert (await read_back(copy, "email:bob@x.com"))[0] == {"age": 41, "city": OTHER_CITY}
    finally:
        await copy.close()


async def test_a_store_written_with_a_key_refuses_to_open_without_it(
    store: Store, tmp_path: Path
) -> None:
    keyring = tmp_path / "idgraph.keyring"
    await fill(await sealed(store, keyring))

    with pytest.raises(ConfigError, match="encrypted at rest: configure its data key"):
        await refuse_if_encrypted(store)
    with pytest.raises(ConfigError, match=r"not the key the keyring .* was written with"):
        Keyring(keyring, NEW_KEY)
    with pytest.raises(ConfigError, match="encrypted with another keyring"):
        await sealed(store, tmp_path / "another.keyring")


async def test_a_key_is_refused_on_a_store_written_without_one(
    store: Store, tmp_path: Path
) -> None:
    await fill(store)
    with pytest.raises(ConfigError, match="holds data written without a data key"):
        await sealed(store, tmp_path / "idgraph.keyring")


async def test_rotation_rewraps_the_keys_and_retires_the_old_key(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "idgraph.keyring"
    encrypted = await sealed(store, path)
    await fill(encrypted)
    assert encrypted.keyring.rotate(NEW_KEY) == 2  # one per event subject
    encrypted.keyring.close()

    with pytest.raises(ConfigError, match="not the key the keyring"):
        Keyring(path, KEY)
    restarted = await sealed(store, path, NEW_KEY)
    assert (await read_back(restarted, "email:ann@x.com"))[0] == {"age": 41, "city": CITY}
    restarted.keyring.close()


async def test_an_erased_persons_values_stay_unreadable_in_an_older_backup(
    store: Store, tmp_path: Path
) -> None:
    """Crypto-shredding: ``forget`` deletes the erased nodes' keys from the keyring,
    which no backup of the store holds; restoring a backup taken before the erasure
    brings back the person's nodes, but none of their trait values or interaction
    properties (their interactions read back with no properties)."""
    keyring = tmp_path / "idgraph.keyring"
    encrypted = await sealed(store, keyring)
    graph = await fill(encrypted)
    old = await backup(encrypted, tmp_path / "before-erasure.backup")
    await graph.forget("email:ann@x.com")

    await encrypted.clear()
    await restore(old, encrypted, batch_size=2)

    assert await read_back(encrypted, "email:ann@x.com") == ({}, [{}])
    assert await read_back(encrypted, "email:bob@x.com") == (
        {"age": 41, "city": OTHER_CITY},
        [{"items": [1, 2], "note": OTHER_NOTE}],
    )
    assert await IdentityGraph(encrypted, Settings()).check() == []


async def test_segment_filters_may_test_encrypted_traits_for_existence_only(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store cannot compare ciphertext: a condition on a trait's value is refused,
    naming where it is, without quoting the value; ``exists`` is evaluated."""
    monkeypatch.setenv("IDGRAPH_DATA_KEY", "tests-only-data-key-0123456789abcdef")
    encrypted = await sealed(store, tmp_path / "idgraph.keyring")
    await fill(encrypted)
    query = "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }"
    async for api in open_api(Settings(), encrypted):
        by_value = {"any": [{"trait": {"name": "city", "eq": CITY}}]}
        refused = await api.query(query, {"f": by_value})
        existing = await api.data(query, {"f": {"trait": {"name": "city", "exists": True}}})
    assert [e["message"] for e in refused["errors"]] == [
        "filter.any[0].trait.eq: trait values are encrypted at rest: only exists can test a trait"
    ]
    assert existing["customers"]["totalCount"] == 2


async def test_a_purged_anonymous_customers_values_stay_unreadable_in_an_older_backup(
    store: Store, tmp_path: Path
) -> None:
    """Retention deletes an inactive anonymous customer whole and, as erasure does,
    shreds its nodes' keys: a backup taken before brings the customer back without its
    values."""
    encrypted = await sealed(store, tmp_path / "idgraph.keyring")
    graph = await fill(encrypted)
    visitor = event("cookie:old-visitor", at="2020-01-01T00:00:00Z", traits={"city": CITY})
    assert (await graph.ingest([visitor])).count(Outcome.ACCEPTED) == 1
    old = await backup(encrypted, tmp_path / "before-purge.backup")
    policy = RetentionSettings(anonymous_customers_days=30)
    a_year_on = utcnow() + timedelta(days=365)  # the customer was created just now
    report = await retention.purge(encrypted, policy, a_year_on, actor="test")
    assert report.counts[Policy.ANONYMOUS_CUSTOMERS] == 1

    await encrypted.clear()
    await restore(old, encrypted, batch_size=2)

    customer = (await encrypted.customer_ids_of(["cookie:old-visitor"]))["cookie:old-visitor"]
    assert (await encrypted.traits_of([customer])).get(customer, []) == []
    assert (await read_back(encrypted, "email:ann@x.com"))[0] == {"age": 41, "city": CITY}
    assert await IdentityGraph(encrypted, Settings()).check() == []


@pytest.mark.parametrize("header", ["naming its keyring", "of an earlier version"])
async def test_a_backup_restored_with_another_keyring_is_refused_and_leaves_nothing(
    store: Store, tmp_path: Path, header: str
) -> None:
    """The right data key but a keyring that never held the backup's keys: sealing the
    values again would store text that never opens, so the restore is refused whole; by
    the header's keyring id, or, in a file written before the header named it, by the
    first sealed value that does not open."""
    encrypted = await sealed(store, tmp_path / "idgraph.keyring")
    await fill(encrypted)
    file = await backup(encrypted, tmp_path / "store.backup")
    if header == "of an earlier version":
        file = rewritten(file, tmp_path / "old.backup", edit_header=without_keyring)
        message = "values sealed by another keyring"
    else:
        message = r"encrypted at rest by keyring .* is sealed by keyring"

    copy = await sealed(
        await open_test_store("sqlite", tmp_path / "copy"), tmp_path / "fresh.keyring"
    )
    try:
        with pytest.raises(ConfigError, match=message):
            await restore(file, copy, batch_size=2)
        assert (await copy.counts())["customers"] == 0
    finally:
        await copy.close()


async def test_an_encrypted_backup_restored_without_a_data_key_is_refused(
    store: Store, tmp_path: Path
) -> None:
    """Without the key its values would read as their sealed text."""
    encrypted = await sealed(store, tmp_path / "idgraph.keyring")
    await fill(encrypted)
    file = await backup(encrypted, tmp_path / "store.backup")

    plain = await open_test_store("sqlite", tmp_path / "plain")
    try:
        with pytest.raises(ConfigError, match="has no data key configured"):
            await restore(file, plain, batch_size=2)
        assert (await plain.counts())["customers"] == 0
    finally:
        await plain.close()


def without_keyring(header: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in header.items() if name != "keyring"}


async def test_a_server_left_on_the_rotated_key_refuses_new_nodes_and_logs_why(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``idgraph rotate-key`` re-wraps the keyring under a server still running with the
    old key: the server refuses to seal for a new node (the client gets ``INTERNAL``,
    nothing quoted), and its log tells the operator to restart with the new key."""
    path = tmp_path / "idgraph.keyring"
    serving = await sealed(store, path)
    await fill(serving)
    rotating = Keyring(path, KEY)
    rotating.rotate(NEW_KEY)
    rotating.close()
    query = "mutation($e: [EventInput!]!) { ingest(events: $e) { accepted } }"
    newcomer = event("email:new@x.com", traits={"city": CITY})
    async for api in open_api(Settings(), serving):
        refused = await api.query(query, {"e": [newcomer]})
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["INTERNAL"]
    assert CITY not in str(refused)
    assert "restart with the new key" in caplog.text
    assert CITY not in caplog.text
