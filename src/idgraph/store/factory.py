"""Pick the store adapter for a URL (:mod:`idgraph.store.url`). The Neo4j driver is
imported only by its adapter.

Every store gets the erasure key here, derived from the server secret, which lives
outside the store (:mod:`idgraph.secret`)."""

from __future__ import annotations

from idgraph.config import Settings
from idgraph.errors import ConfigError
from idgraph.store.port import Store
from idgraph.store.url import is_neo4j, sqlite_path


def erasure_key(settings: Settings) -> bytes:
    """The key of the erasure record (:mod:`idgraph.store.erasure`)."""
    return settings.secret().subkey("erasure")


async def open_store(settings: Settings, *, restoring: bool = False) -> Store:
    """The configured store. ``restoring``: open it even if a restore into it did not
    complete (``idgraph restore`` only; see :meth:`Store.import_all`)."""
    url = settings.store
    path = sqlite_path(url)
    if path is not None:
        from idgraph.store.sqlite import SqliteStore

        return SqliteStore(path, erasure_key=erasure_key(settings))
    if is_neo4j(url):
        from idgraph.store.neo4j import Neo4jStore

        return await Neo4jStore.open(
            url, settings.neo4j, erasure_key=erasure_key(settings), restoring=restoring
        )
    raise ConfigError(
        f"unsupported store URL {url!r}: use sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db, a file path, or neo4j://host:7687"
    )
