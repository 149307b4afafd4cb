"""The embedded store's schema version: an older idgraph refuses a store a newer one
wrote, naming both versions, and leaves it as it was (migrating up: tests/test_repair.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from idgraph.errors import ConfigError
from idgraph.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.conftest import ERASURE_KEY


async def test_a_store_written_by_a_newer_idgraph_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    await SqliteStore(path, erasure_key=ERASURE_KEY).close()
    newer = str(int(SCHEMA_VERSION) + 1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (newer,))
    with pytest.raises(ConfigError, match=f"schema version {newer}.* up to {SCHEMA_VERSION}"):
        SqliteStore(path, erasure_key=ERASURE_KEY)
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    assert found == (newer,)
