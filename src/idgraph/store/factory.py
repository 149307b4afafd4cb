"""Pick the store adapter for a URL. The Neo4j driver is imported only by its adapter.

Every store gets the erasure key here, derived from the server secret, which lives
outside the store (:mod:`idgraph.secret`)."""

from __future__ import annotations

from idgraph.config import Settings
from idgraph.errors import ConfigError
from idgraph.store.port import Store

NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def erasure_key(settings: Settings) -> bytes:
    """The key of the erasure record (:mod:`idgraph.store.erasure`)."""
    return settings.secret().subkey("erasure")


async def open_store(settings: Settings) -> Store:
    url = settings.store
    if url.startswith("sqlite:///"):
        from idgraph.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"), erasure_key=erasure_key(settings))
    if url.startswith(NEO4J_SCHEMES):
        from idgraph.store.neo4j import Neo4jStore

        return await Neo4jStore.open(url, settings.neo4j, erasure_key=erasure_key(settings))
    raise ConfigError(
        f"unsupported store URL {url!r}: use sqlite:///path/to/file.db or neo4j://host:7687"
    )
