"""The keyring: one data-encryption key (DEK) per identity node, wrapped by the data key,
in an SQLite file outside the store (``[encryption] keyring``, by default beside the
server secret: ``idgraph.keyring``). Both store kinds use it.

Why outside the store: a backup of the store then carries only ciphertext, and erasing a
person deletes their nodes' DEKs here, so their values stay unreadable even in a backup
taken before the erasure (crypto-shredding). A copy of the keyring carries the DEKs of
everyone erased after the copy was made: keep copies only as long as the erasure
deadline allows.

A DEK's id is the keyed BLAKE2b (a MAC) of the node key under the keyring's salt, 16
bytes: the keyring
holds no identifier, and a sealed value names its DEK without naming its node. Deleted
rows are overwritten (``secure_delete``) and the WAL is truncated after a shred or a
rotation, so a DEK once deleted is not left in the file.

Several processes may share one keyring file (serve workers, the CLI): a DEK is created
with ``INSERT OR IGNORE`` and read back, so two processes creating the DEK of the same
node agree on it. Processes on other hosts (several ``serve`` hosts on one Neo4j) need
the same file, on a shared file system SQLite supports, or one writer host.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idgraph.encryption.datakey import DataKey
from idgraph.errors import ConfigError
from idgraph.files import create_private

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS deks (id BLOB PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID",
)
DEK_BYTES = 32  # AES-256
ID_BYTES = 16
CACHE_SIZE = 100_000  # unwrapped DEKs kept in memory (one AESGCM each)
CHUNK = 500  # ids per SELECT … IN (…)


class Keyring:
    """The DEKs of one keyring file, unwrapped with ``key`` as they are needed.

    :class:`ConfigError` at open if ``key`` is not the key the keyring was written with.
    """

    def __init__(self, path: str | Path, key: DataKey) -> None:
        self.path = Path(path)
        self._key = key
        self._lock = threading.Lock()  # one connection, used from the loop and threads
        self._cache: dict[bytes, AESGCM] = {}
        self._ids: dict[str, bytes] = {}  # node key → DEK id, bounded like the cache
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.executescript(
                "PRAGMA busy_timeout=30000; PRAGMA journal_mode=WAL; PRAGMA secure_delete=ON;"
            )
            with self._write() as db:
                for statement in SCHEMA:
                    db.execute(statement)
                for name, value in (
                    ("id", uuid.uuid4().hex),
                    ("salt", secrets.token_hex(32)),
                    ("key_check", key.check),
                ):
                    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, value))
                meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the keyring {self.path}: {exc}") from exc
        self.id: str = meta["id"]
        self._salt = bytes.fromhex(meta["salt"])
        if meta["key_check"] != key.check:
            self._db.close()
            raise ConfigError(
                f"the data key is not the key the keyring {self.path} was written with "
                "(check IDGRAPH_DATA_KEY / [encryption] data_key_file)"
            )

    def close(self) -> None:
        self._db.close()

    def dek_id(self, node_key: str) -> bytes:
        dek_id = self._ids.get(node_key)
        if dek_id is None:
            if len(self._ids) >= CACHE_SIZE:
                self._ids.clear()
            dek_id = self._ids[node_key] = hashlib.blake2b(
                node_key.encode(), key=self._salt, digest_size=ID_BYTES
            ).digest()
        return dek_id

    def ciphers_for(self, node_keys: Iterable[str]) -> dict[str, tuple[bytes, AESGCM]]:
        """The DEK of each node (its id and cipher), created for nodes that have none."""
        ids = {key: self.dek_id(key) for key in node_keys}
        found = self.load(ids.values())
        missing = set(ids.values()) - found.keys()
        if missing:
            found |= self._create(missing)
        return {key: (i, found[i]) for key, i in ids.items()}

    def _create(self, dek_ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        made = {i: AESGCM.generate_key(DEK_BYTES * 8) for i in dek_ids}
        insert = "INSERT OR IGNORE INTO deks VALUES (?, ?)"
        with self._write() as db:
            self._check_key(db)
            lost = [
                i
                for i, dek in made.items()
                if not db.execute(insert, (i, self._key.wrap(dek, i))).rowcount
            ]
        # Where another process made the DEK first, theirs won: read it back.
        created = {i: AESGCM(dek) for i, dek in made.items() if i not in lost}
        self._cache |= created
        return created | self.load(lost)

    def cipher(self, dek_id: bytes) -> AESGCM | None:
        """The DEK of that id, None if the keyring has none (shredded, or never made)."""
        cached = self._cache.get(dek_id)
        return cached if cached is not None else self.load((dek_id,)).get(dek_id)

    def load(self, dek_ids: Iterable[bytes]) -> dict[bytes, AESGCM]:
        """The DEKs of these ids the keyring holds, read and unwrapped once and then kept
        in memory (a bounded cache; one query per 500 ids not in it)."""
        wanted = set(dek_ids)
        found = {i: self._cache[i] for i in wanted if i in self._cache}
        unread = list(wanted - found.keys())
        if len(self._cache) + len(unread) > CACHE_SIZE:
            self._cache.clear()
        for start in range(0, len(unread), CHUNK):
            chunk = unread[start : start + CHUNK]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, wrapped FROM deks WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            for dek_id, wrapped in rows:
                found[dek_id] = self._cache[dek_id] = AESGCM(self._key.unwrap(wrapped, dek_id))
        return found

    def shred(self, node_keys: Iterable[str]) -> int:
        """Delete the DEKs of these nodes, for good; returns how many there were."""
        ids = [self.dek_id(key) for key in node_keys]
        with self._write() as db:
            deleted = sum(db.execute("DELETE FROM deks WHERE id = ?", (i,)).rowcount for i in ids)
        for i in ids:
            self._cache.pop(i, None)
        self._truncate_wal()
        return deleted

    def rotate(self, new: DataKey) -> int:
        """Re-wrap every DEK under ``new``, in one transaction: the data is not rewritten.
        Returns how many DEKs were re-wrapped. From then on only ``new`` opens the
        keyring; processes still running with the old key refuse to make new DEKs."""
        if new.check == self._key.check:
            raise ConfigError("the new data key is the key in use: nothing to rotate")
        with self._write() as db:
            self._check_key(db)
            rows = db.execute("SELECT id, wrapped FROM deks").fetchall()
            db.executemany(
                "UPDATE deks SET wrapped = ? WHERE id = ?",
                [(new.wrap(self._key.unwrap(wrapped, i), i), i) for i, wrapped in rows],
            )
            db.execute("UPDATE meta SET value = ? WHERE name = 'key_check'", (new.check,))
        self._key = new
        self._truncate_wal()
        return len(rows)

    def _check_key(self, db: sqlite3.Connection) -> None:
        (recorded,) = db.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        if recorded != self._key.check:
            raise ConfigError(
                f"the keyring {self.path} was re-wrapped under another data key "
                "(idgraph rotate-key): restart with the new key"
            )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _truncate_wal(self) -> None:
        """Copy the WAL into the file and empty it: the deleted or replaced rows' pages
        were overwritten there (``secure_delete``), the WAL still holds them."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
