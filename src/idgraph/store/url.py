"""Store URLs, read in one place.

``sqlite:///relative/path.db`` (three slashes, then a path relative to the working
directory), ``sqlite:////absolute/path.db`` (four: the path starts with ``/``), or a plain
file path, which is an SQLite file too; Neo4j by its driver's URL schemes. These are the
forms SQLAlchemy and most database tools use, so a URL copied from them means the same.
"""

from __future__ import annotations

SQLITE_PREFIX = "sqlite:///"
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite store URL or plain path; None for any other URL."""
    if url.startswith(SQLITE_PREFIX):
        return url.removeprefix(SQLITE_PREFIX) or None
    return None if "://" in url or not url else url


def is_neo4j(url: str) -> bool:
    return url.startswith(NEO4J_SCHEMES)
