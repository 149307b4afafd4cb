"""What the embedded store leaves on disk: file modes, no plaintext of an erased person in
any store file, and an erasure record that a copy of the store cannot reverse."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from idgraph.config import Settings
from idgraph.domain.model import Outcome
from idgraph.errors import ConfigError
from idgraph.service import IdentityGraph
from idgraph.store.erasure import ErasureHasher
from idgraph.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event

OTHER_KEY = b"another-erasure-key".ljust(32, b"x")

# Everything the erased person's events carry, as it would be stored (normalized).
PERSON = event(
    "email:Quentin.Zebulon-7781@Example.org",
    "phone:+1 650 253 0199",
    "cookie:ck-zq7781-unique-cookie",
    "device:dev-zq7781-handset",
    "account:zq7shop:acct-zq7781",
    "crm_id:crm-zq7781",
    event_id="evt-1",
    traits={"full_name": "Quentin Zebulon", "city": "Xanthoria-Zq"},
    interaction={
        "type": "purchase",
        "channel": "web",
        "properties": {"sku": "SKU-ZQ7781-SECRET", "note": "ribbon-zq7781-gift"},
    },
    consent={"purpose": "marketing", "status": "granted"},
)
LATER = event(
    "crm_id:crm-zq7781",
    "user_id:uid-zq7781",
    event_id="evt-2",
    traits={"tier": "platinum-zq7781"},
)
PLAINTEXT = [
    "quentin.zebulon-7781@example.org",
    "+16502530199",
    "ck-zq7781-unique-cookie",
    "dev-zq7781-handset",
    "acct-zq7781",
    "crm-zq7781",
    "uid-zq7781",
    "Quentin Zebulon",
    "Xanthoria-Zq",
    "platinum-zq7781",
    "SKU-ZQ7781-SECRET",
    "ribbon-zq7781-gift",
]
# The identity keys of the first event.
KEYS = [
    "email:quentin.zebulon-7781@example.org",
    "phone:+16502530199",
    "cookie:ck-zq7781-unique-cookie",
    "device:dev-zq7781-handset",
    "account:zq7shop:acct-zq7781",
    "crm_id:crm-zq7781",
]
OTHERS = [event(f"email:other{i}@example.com", f"cookie:other-{i}") for i in range(50)]


def store_files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def leftovers(db: Path) -> list[tuple[str, str]]:
    """Every (file, value) where a value of the erased person is still on disk."""
    return [
        (path.name, value)
        for path in store_files(db)
        for value in PLAINTEXT
        if value.encode() in path.read_bytes()
    ]


@pytest.fixture
def umask() -> Iterator[None]:
    """A permissive umask, so only idgraph can make files private."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_forget_leaves_no_plaintext_in_the_database_wal_or_shm(tmp_path: Path) -> None:
    db = tmp_path / "idgraph.db"
    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest(OTHERS[:25])
    await graph.ingest([PERSON])
    await graph.ingest([LATER, *OTHERS[25:]])
    await graph.audit("k", "support", "resolve", [await graph.customer_of("crm_id:crm-zq7781")])
    assert {value for _, value in leftovers(db)} == set(PLAINTEXT)  # the probe finds them

    report = await graph.forget("email:quentin.zebulon-7781@example.org")

    assert (report.traits, report.interactions) == (3, 1)
    assert leftovers(db) == []
    assert Path(f"{db}-wal").stat().st_size == 0
    assert (await store.counts())["nodes"] == 100, "everyone else stays"
    await graph.ingest([event("email:after@example.com")])  # the store goes on working
    await store.close()
    assert leftovers(db) == []


async def test_a_reader_holding_an_old_snapshot_delays_the_wal_purge_until_it_lets_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "idgraph.db"
    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([PERSON, LATER, *OTHERS])
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM nodes").fetchone()  # a snapshot from before

    with caplog.at_level(logging.WARNING, logger="idgraph.store"):
        await graph.forget("crm_id:crm-zq7781")

    assert "the WAL could not be truncated after an erasure" in caplog.text
    assert "zq7781" not in caplog.text.lower()
    reader.execute("COMMIT")
    reader.close()
    await graph.ingest([event("email:someone@example.com")])
    await store.close()  # the last connection checkpoints and removes the WAL
    assert leftovers(db) == []


async def test_the_erasure_record_needs_the_secret(tmp_path: Path) -> None:
    db = tmp_path / "idgraph.db"
    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([PERSON, LATER])
    await graph.forget("crm_id:crm-zq7781")
    await store.close()

    with sqlite3.connect(db) as raw:
        meta = dict(raw.execute("SELECT name, value FROM meta"))
        hashes = {h for (h,) in raw.execute("SELECT hash FROM erased")}
    hasher = ErasureHasher(ERASURE_KEY)
    assert meta == {"schema_version": SCHEMA_VERSION, "erasure_key_check": hasher.key_check}
    assert ERASURE_KEY.hex() not in repr(meta)
    assert hashes == {hasher.hash(k) for k in [*KEYS, "user_id:uid-zq7781"]}
    unkeyed = {hashlib.sha256(k.encode()).hexdigest() for k in KEYS} | {
        hashlib.sha256(f"{v}:{k}".encode()).hexdigest() for k in KEYS for v in meta.values()
    }
    assert not hashes & unkeyed

    # opened under another secret, the store would stop refusing the erased: it refuses
    with pytest.raises(ConfigError, match="written under another server secret"):
        SqliteStore(db, erasure_key=OTHER_KEY)
    reopened = SqliteStore(db, erasure_key=ERASURE_KEY)
    replay = await IdentityGraph(reopened, Settings()).ingest([{**PERSON, "id": "evt-again"}])
    assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED]
    await reopened.close()


async def test_a_store_that_erased_nobody_takes_a_new_secret(tmp_path: Path) -> None:
    db = tmp_path / "idgraph.db"
    await SqliteStore(db, erasure_key=ERASURE_KEY).close()
    store = SqliteStore(db, erasure_key=OTHER_KEY)  # nothing erased yet: nothing to lose
    graph = IdentityGraph(store, Settings())
    await graph.ingest([PERSON])
    await graph.forget("crm_id:crm-zq7781")
    await store.close()
    with pytest.raises(ConfigError, match="another server secret"):
        SqliteStore(db, erasure_key=ERASURE_KEY)


async def test_a_store_erased_with_a_salt_is_rekeyed_and_keeps_refusing(tmp_path: Path) -> None:
    """Stores written before the keyed hash kept sha256(salt:key) beside the salt."""
    db = tmp_path / "idgraph.db"
    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    await store.close()
    salt = "0f" * 16
    salted = [hashlib.sha256(f"{salt}:{k}".encode()).hexdigest() for k in KEYS]
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO meta VALUES ('erase_salt', ?)", (salt,))
        raw.executemany(
            "INSERT INTO erased VALUES (?, '2026-01-01T00:00:00.000000+00:00')",
            [(h,) for h in salted],
        )

    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    replay = await IdentityGraph(store, Settings()).ingest([PERSON])
    assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED]
    record = await store.erasures()
    assert record.legacy_salt == salt
    assert len(record.hashes) == len(KEYS)
    assert not set(record.hashes) & set(salted), "the salted hashes are gone"
    await store.close()
    for path in store_files(db):
        assert not any(h.encode() in path.read_bytes() for h in salted), path.name
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT value FROM meta WHERE name = 'erase_salt'").fetchone() is None

    reopened = SqliteStore(db, erasure_key=ERASURE_KEY)  # a second open changes nothing
    assert await reopened.erasures() == record
    await reopened.close()


async def test_a_new_store_and_its_wal_are_private(tmp_path: Path, umask: None) -> None:
    db = tmp_path / "data" / "idgraph.db"
    store = SqliteStore(db, erasure_key=ERASURE_KEY)
    await IdentityGraph(store, Settings()).ingest([PERSON])
    assert {p.name: mode(p) for p in store_files(db)} == {
        "idgraph.db": 0o600,
        "idgraph.db-wal": 0o600,
        "idgraph.db-shm": 0o600,
    }
    await store.close()


async def test_an_existing_store_file_keeps_its_mode_with_a_warning(
    tmp_path: Path, umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "idgraph.db"
    sqlite3.connect(db).close()
    db.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="idgraph.store"):
        await SqliteStore(db, erasure_key=ERASURE_KEY).close()
    assert mode(db) == 0o640
    assert "is open to other users (mode 0o640): chmod 600" in caplog.text
    caplog.clear()
    db.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="idgraph.store"):
        await SqliteStore(db, erasure_key=ERASURE_KEY).close()
    assert caplog.text == ""
