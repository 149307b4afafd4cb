"""The erasure record: what a store keeps of each erased identity key, so that events
carrying it are refused later, and nothing more.

A key is kept as HMAC-SHA256 under the erasure key, ``ServerSecret.subkey("erasure")``
(see :mod:`idgraph.secret`), which never enters the store: a copy of the store alone
cannot be searched for erased identifiers, however few the candidates are (every phone
number of an area code, every email of a pattern). Without the secret the record refuses
nothing; a store copied elsewhere needs the same secret. So that a wrong secret cannot
go unnoticed, the store keeps a fingerprint of the key (an HMAC of a constant, which
reveals nothing of the key) and refuses to open under another key once it has erased
anyone (:meth:`ErasureHasher.verify`).

Stores written before the HMAC kept SHA-256 of ``salt:key`` with the salt beside the
hashes, which a copy of the store reverses by trying candidates. When such a store is
opened, each old hash ``h`` is replaced by ``HMAC(erasure key, "legacy:" + h)`` and the
salt is kept as the *legacy salt*: checking a key against those entries then needs the
salt and the secret, so they keep refusing replays but no longer reveal anything to a
reader of the store alone. (Copies and backups taken before the upgrade still do.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from idgraph.errors import ConfigError

# The meta entry holding the salt of a store written before the HMAC, while not re-keyed.
UNKEYED_SALT = "erase_salt"
# The meta entry holding that salt once its hashes are re-keyed.
LEGACY_SALT = "legacy_erase_salt"
# The meta entry holding the fingerprint of the erasure key.
KEY_CHECK = "erasure_key_check"


@dataclass(frozen=True, slots=True)
class ErasureRecord:
    """Everything a copy of a store needs to keep refusing erased keys (with the same
    server secret): the keyed hashes and, for stores erased before the HMAC, the salt."""

    hashes: list[str] = field(default_factory=list)
    legacy_salt: str | None = None


class ErasureHasher:
    """The keyed hashes of identity keys for one store."""

    def __init__(self, key: bytes, legacy_salt: str | None = None) -> None:
        self._key = key
        self.legacy_salt = legacy_salt

    def hash(self, key: str) -> str:
        """What a store records for an identity key it erases."""
        return hmac.new(self._key, key.encode(), hashlib.sha256).hexdigest()

    def rekey(self, salted_hash: str) -> str:
        """An entry of a store erased before the HMAC, keyed."""
        return hmac.new(self._key, f"legacy:{salted_hash}".encode(), hashlib.sha256).hexdigest()

    def candidates(self, keys: Iterable[str]) -> dict[str, str]:
        """Every hash under which one of ``keys`` may be recorded → that key."""
        found = {self.hash(k): k for k in keys}
        if self.legacy_salt is not None:
            salt = self.legacy_salt
            for k in list(found.values()):
                found[self.rekey(hashlib.sha256(f"{salt}:{k}".encode()).hexdigest())] = k
        return found

    @property
    def key_check(self) -> str:
        """The fingerprint of the erasure key a store keeps."""
        return hmac.new(self._key, b"idgraph:erasure-key-check", hashlib.sha256).hexdigest()

    def verify(self, recorded: str | None, *, has_record: bool, store: str) -> None:
        """Refuse a store whose erasure record was written under another key: opened like
        that, it would no longer refuse erased identifiers. A store that erased nobody
        yet simply takes the new key (the caller records :attr:`key_check`)."""
        if has_record and recorded is not None and recorded != self.key_check:
            raise ConfigError(
                f"the erasure record of {store} was written under another server secret: "
                "open it with that secret (IDGRAPH_SECRET or the secret file; see "
                "docs/operations.md), or erased identifiers would no longer be refused"
            )

    def __repr__(self) -> str:
        return "ErasureHasher(…)"
