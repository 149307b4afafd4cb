"""API keys: create (the secret is shown once), list, revoke, authenticate."""

from __future__ import annotations

import re
from collections.abc import Sequence

from idgraph.config import Settings
from idgraph.domain.access import ApiKey, Role, hash_secret, new_secret
from idgraph.domain.model import utcnow
from idgraph.errors import InvalidInput, NotFound
from idgraph.store.port import Store

KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # whole names: fullmatch


class KeyRing:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def create(self, name: str, role: str, purposes: Sequence[str]) -> tuple[ApiKey, str]:
        """A new key and its secret. Only the secret's hash is stored."""
        if not KEY_NAME.fullmatch(name):
            raise InvalidInput(f"key name {name!r} must match {KEY_NAME.pattern}")
        try:
            key_role = Role(role)
        except ValueError:
            raise InvalidInput(
                f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}"
            ) from None
        if not purposes:
            raise InvalidInput("a key needs at least one purpose (--purpose)")
        unknown = [p for p in purposes if self.settings.purpose(p) is None]
        if unknown:
            configured = ", ".join(p.name for p in self.settings.purposes)
            raise InvalidInput(f"unknown purpose {unknown[0]!r}; configured: {configured}")
        secret = new_secret()
        key = ApiKey(name, key_role, tuple(dict.fromkeys(purposes)), hash_secret(secret), utcnow())
        await self.store.put_key(key)
        return key, secret

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key for a presented secret, or None (unknown or revoked)."""
        key = await self.store.key_by_hash(hash_secret(secret))
        return key if key is not None and key.revoked_at is None else None

    async def list(self) -> list[ApiKey]:
        return await self.store.api_keys()

    async def revoke(self, name: str) -> None:
        if not KEY_NAME.fullmatch(name):  # no such key could exist (nor reach the store)
            raise NotFound(f"no API key named {name!r}")
        await self.store.revoke_key(name, utcnow())
