"""The data key: what an operator configures to encrypt a store, found in this order:

1. ``IDGRAPH_DATA_KEY``: the key itself (at least 32 characters), for containers;
2. the file ``[encryption] data_key_file`` names (``IDGRAPH_DATA_KEY_FILE``).

Neither set: the store is not encrypted. Unlike the server secret the file is never
created for you (``openssl rand -hex 32 > data.key``): encryption is a choice, and a
key nobody backed up is data nobody can read.

The key itself encrypts nothing but the data-encryption keys (it is the key-encryption
key of :mod:`idgraph.encryption.keyring`), so rotating it rewrites those keys, not the
data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idgraph.errors import ConfigError
from idgraph.secret import MIN_SECRET_CHARS, key_from_environment, read_key_file

DATA_KEY_ENV = "IDGRAPH_DATA_KEY"
NONCE_BYTES = 12


class DataKey:
    """A key-encryption key (AES-256-GCM), derived from the configured material with
    HMAC-SHA256, so any text of 32 characters or more makes a full-strength key."""

    def __init__(self, material: bytes) -> None:
        if len(material) < MIN_SECRET_CHARS:
            raise ConfigError(f"the data key must be at least {MIN_SECRET_CHARS} characters")
        kek = hmac.new(material, b"idgraph:data-key", hashlib.sha256).digest()
        self._aead = AESGCM(kek)
        # Recorded in the keyring to recognise the key; reveals nothing of it.
        self.check = hmac.new(kek, b"idgraph:key-check", hashlib.sha256).hexdigest()[:32]

    def wrap(self, dek: bytes, dek_id: bytes) -> bytes:
        """``dek`` encrypted, bound to its id (a wrapped DEK moved to another id fails)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, dek, b"idgraph:dek:" + dek_id)

    def unwrap(self, wrapped: bytes, dek_id: bytes) -> bytes:
        """The DEK ``wrap`` gave; :class:`ConfigError` if this key did not wrap it."""
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"idgraph:dek:" + dek_id
            )
        except InvalidTag:
            raise ConfigError(
                "a data-encryption key in the keyring was not wrapped by this data key: "
                "if it was rotated (idgraph rotate-key), restart with the new key"
            ) from None

    def __repr__(self) -> str:
        return "DataKey(…)"


def data_key_configured(key_file: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a data key is configured (without reading it)."""
    env = os.environ if environ is None else environ
    return bool(env.get(DATA_KEY_ENV)) or key_file is not None


def load_data_key(key_file: str | None, environ: Mapping[str, str] | None = None) -> DataKey | None:
    """The configured data key, or None when none is configured."""
    given = key_from_environment(DATA_KEY_ENV, environ)
    if given is not None:
        return DataKey(given)
    if key_file is None:
        return None
    return DataKey(read_key_file(Path(key_file), "the data key file"))
