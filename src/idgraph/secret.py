"""The server secret: key material idgraph needs that must never sit inside the store.

A copy of the store alone must not reveal what idgraph keeps out of it: the erasure
record is a keyed hash (HMAC) of each erased key, and the ids and cursors the API hands
out are encrypted. Both keys are derived from one secret, found in this order:

1. ``IDGRAPH_SECRET``: the secret itself (at least 32 characters), for containers;
2. the file ``secret_file`` names (``IDGRAPH_SECRET_FILE``, else ``secret_file`` in
   ``idgraph.toml``);
3. the default file: beside an SQLite store, the database's name with ``.secret``
   (``idgraph.db`` → ``idgraph.secret``); ``./idgraph.secret`` for Neo4j.

A missing file is created on first use with mode 0600, atomically (several processes
starting at once end up with the same secret). Back it up apart from the store: without
it, erased identifiers are no longer refused and old ids and cursors stop working.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from idgraph.errors import ConfigError
from idgraph.store.url import sqlite_path

SECRET_ENV = "IDGRAPH_SECRET"
MIN_SECRET_CHARS = 32
SECRET_BYTES = 32


class ServerSecret:
    """Derives independent keys for each use from one secret (HMAC-SHA256 as a KDF)."""

    def __init__(self, material: bytes) -> None:
        if len(material) < MIN_SECRET_CHARS:
            raise ConfigError(f"the server secret must be at least {MIN_SECRET_CHARS} bytes")
        self._material = material

    def subkey(self, label: str) -> bytes:
        """32 bytes of key material for one use, e.g. ``"erasure"`` or ``"ids"``."""
        return hmac.new(self._material, f"idgraph:{label}".encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "ServerSecret(…)"


def default_secret_path(store_url: str) -> Path:
    path = sqlite_path(store_url)
    if path is not None and Path(path).name != ":memory:":
        return Path(path).with_suffix(".secret")
    return Path("idgraph.secret")


def key_from_environment(name: str, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key material the environment variable ``name`` holds, None if it is unset or
    empty; ConfigError if it is too short to be a key."""
    given = (os.environ if environ is None else environ).get(name)
    if not given:
        return None
    if len(given) < MIN_SECRET_CHARS:
        raise ConfigError(f"{name} must be at least {MIN_SECRET_CHARS} characters")
    return given.encode()


def load_secret(
    store_url: str, secret_file: str | None, environ: Mapping[str, str] | None = None
) -> ServerSecret:
    given = key_from_environment(SECRET_ENV, environ)
    if given is not None:
        return ServerSecret(given)
    path = Path(secret_file) if secret_file else default_secret_path(store_url)
    return ServerSecret(_read_or_create(path))


def read_key_file(path: Path, what: str) -> bytes:
    """The key material in ``path`` (text, trimmed): at least 32 characters, else
    :class:`ConfigError` naming ``what`` it is."""
    try:
        material = path.read_text().strip().encode()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from exc
    if len(material) < MIN_SECRET_CHARS:
        raise ConfigError(f"{what} {path} is shorter than {MIN_SECRET_CHARS} characters")
    return material


def _read_or_create(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(SECRET_BYTES) + "\n")
        with contextlib.suppress(FileExistsError):  # another process got there first
            os.link(draft, path)  # atomic: readers never see a half-written file
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(path)
    return read_key_file(path, "the server secret")
