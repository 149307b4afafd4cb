"""An encrypted store copied into Neo4j (``export --to``) stays encrypted: the copy holds
the values sealed, opens with the same data key and keyring, and refuses to open
without the key (skipped without ``NEO4J_URI``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from idgraph.config import EncryptionSettings, Settings
from idgraph.errors import ConfigError
from idgraph.service import IdentityGraph
from idgraph.store.encrypted import EncryptedStore
from idgraph.store.factory import open_store
from idgraph.transfer import export_to_neo4j
from tests.conftest import ERASURE_KEY, neo4j_settings, open_test_store
from tests.contract.test_encryption import CITY, fill, raw_text, read_back, sealed
from tests.neo4j.helpers import neo4j_uri

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
