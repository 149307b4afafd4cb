"""API keys: create (the secret is shown once), list, revoke, authenticate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from idgraph.config import Settings
from idgraph.domain.access import ApiKey, Role, hash_secret, new_secret
from idgraph.domain.model import utcnow
from idgraph.errors import InvalidInput, NotFound
from idgraph.store.port import Store

KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")  # whole names: fullmatch
TRUSTED_KEYS = 1024  # live keys remembered at once (settings.api.key_cache_seconds)


class KeyRing:
    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._trusted: dict[str, tuple[float, ApiKey]] = {}  # secret hash -> (found at, key)

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
        """The live key for a presented secret, or None (unknown or revoked). A key found
        live is trusted for ``key_cache_seconds`` without asking the store again; unknown
        and revoked secrets are never remembered."""
        digest = hash_secret(secret)
        now = self._clock()
        trusted = self._trusted.get(digest)
        if trusted is not None and now - trusted[0] < self.settings.api.key_cache_seconds:
            return trusted[1]
        key = await self.store.key_by_hash(digest)
        if key is None or key.revoked_at is not None:
            self._trusted.pop(digest, None)
            return None
        if self.settings.api.key_cache_seconds > 0:
            if len(self._trusted) >= TRUSTED_KEYS:
                self._trusted.clear()
            self._trusted[digest] = (now, key)
        return key

    async def list(self) -> list[ApiKey]:
        return await self.store.api_keys()

    async def revoke(self, name: str) -> None:
        if not KEY_NAME.fullmatch(name):  # no such key could exist (nor reach the store)
            raise NotFound(f"no API key named {name!r}")
        await self.store.revoke_key(name, utcnow())
        self._trusted.clear()
