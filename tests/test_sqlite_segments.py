"""The embedded store's segment reads stop when a filter makes them too costly."""

from __future__ import annotations

import sqlite3

import pytest

from idgraph.errors import InvalidInput
from idgraph.store.sqlite_segments import budget

COUNTING = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "


def test_a_read_over_its_budget_is_refused_and_the_connection_stays_usable() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(InvalidInput, match="narrow it"), budget(db, seconds=0):
        db.execute(COUNTING + "SELECT count(*) FROM n").fetchone()
    assert db.execute(COUNTING + "SELECT count(*) FROM n").fetchone() == (1_000_000,)
