"""An encrypted store copied into Neo4j (``export --to``) stays encrypted: the copy holds
the values sealed, opens with the same data key and keyring, and refuses to open
without the key; a forced restore over it keeps it sealed (skipped without
``NEO4J_URI``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from idgraph.cli import main
from idgraph.config import EncryptionSettings, Settings
from idgraph.errors import ConfigError
from idgraph.service import IdentityGraph
from idgraph.store.encrypted import EncryptedStore
from idgraph.store.factory import open_store
from idgraph.transfer import export_to_neo4j
from tests.conftest import ERASURE_KEY, neo4j_settings, open_test_store
from tests.contract.test_encryption import CITY, fill, raw_text, read_back, sealed
from tests.events import event
from tests.neo4j.helpers import neo4j_uri, run_cypher

pytestmark = pytest.mark.neo4j


async def test_a_copy_into_neo4j_stays_sealed_and_needs_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_secret: str
) -> None:
    keyring = tmp_path / "idgraph.keyring"
    source = await sealed(await open_test_store("sqlite", tmp_path), keyring)
    await fill(source)
    await export_to_neo4j(
        source, neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY, replace=True
    )
    await source.close()

    settings = Settings(
        store=neo4j_uri(),
        neo4j=neo4j_settings(),
        encryption=EncryptionSettings(keyring=str(keyring)),
    )
    with pytest.raises(ConfigError, match="encrypted at rest"):
        await open_store(settings)
    monkeypatch.setenv("IDGRAPH_DATA_KEY", "tests-only-data-key-0123456789abcdef")
    copy = await open_store(settings)
    try:
        assert isinstance(copy, EncryptedStore)
        assert CITY not in await raw_text(copy.inner)
        assert (await read_back(copy, "email:ann@x.com"))[0]["city"] == CITY
        assert await IdentityGraph(copy, settings).check() == []
    finally:
        await copy.close()


async def test_a_forced_restore_over_an_encrypted_store_keeps_it_sealed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server_secret: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``idgraph restore --force`` over an encrypted Neo4j store that holds data: the
    store still opens with its key, clean, its values sealed and reading back. (Clearing
    it used to drop the record of its keyring, and it then refused to open, as a store
    written without a key.)"""
    await (await open_test_store("neo4j", tmp_path)).close()  # an empty database
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDGRAPH_DATA_KEY", "tests-only-data-key-0123456789abcdef")
    monkeypatch.setenv("IDGRAPH_KEYRING", str(tmp_path / "idgraph.keyring"))
    Path("events.jsonl").write_text(
        json.dumps(event("email:ann@x.com", traits={"city": CITY})) + "\n"
    )

    async def cli(*args: str) -> int:
        return await asyncio.to_thread(main, ["--store", neo4j_uri(), *args])

    assert await cli("ingest", "events.jsonl") == 0
    assert await cli("backup", "store.backup") == 0

    assert await cli("restore", "--force", "store.backup") == 0

    capsys.readouterr()
    assert await cli("check") == 0
    assert await cli("resolve", "email:ann@x.com") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["traits"]["city"]["value"] == CITY
    values = await run_cypher("MATCH (t:Trait) RETURN t.value AS value")
    assert len(values) == 1
    assert CITY not in str(values[0]["value"])
