"""Pick the store adapter for a URL (:mod:`idgraph.store.url`). The Neo4j driver is
imported only by its adapter.

Every store gets the erasure key here, derived from the server secret, which lives
outside the store (:mod:`idgraph.secret`); with a data key configured, the adapter is
wrapped in :class:`~idgraph.store.encrypted.EncryptedStore`."""

from __future__ import annotations

from idgraph.config import Settings
from idgraph.encryption.keyring import Keyring
from idgraph.errors import ConfigError
from idgraph.store.encrypted import EncryptedStore, refuse_if_encrypted
from idgraph.store.port import Store
from idgraph.store.url import is_neo4j, sqlite_path


def erasure_key(settings: Settings) -> bytes:
    """The key of the erasure record (:mod:`idgraph.store.erasure`)."""
    return settings.secret().subkey("erasure")


async def open_store(settings: Settings) -> Store:
    """The configured store, encrypted at rest if a data key is configured. ConfigError if
    the store was encrypted and no key, or another key, is configured."""
    store = await _open_adapter(settings)
    try:
        key = settings.data_key()
        if key is None:
            await refuse_if_encrypted(store)
            return store
        return await EncryptedStore.open(store, Keyring(settings.keyring_path(), key))
    except BaseException:
        await store.close()
        raise


async def _open_adapter(settings: Settings) -> Store:
    url = settings.store
    path = sqlite_path(url)
    if path is not None:
        from idgraph.store.sqlite import SqliteStore

        return SqliteStore(path, erasure_key=erasure_key(settings))
    if is_neo4j(url):
        from idgraph.store.neo4j import Neo4jStore

        return await Neo4jStore.open(url, settings.neo4j, erasure_key=erasure_key(settings))
    raise ConfigError(
        f"unsupported store URL {url!r}: use sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db, a file path, or neo4j://host:7687"
    )
