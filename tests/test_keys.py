"""API keys found live are trusted for ``key_cache_seconds``, and no longer."""

from __future__ import annotations

import dataclasses

from idgraph.config import Settings
from idgraph.keys import KeyRing
from idgraph.store.port import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def trusting(seconds: float) -> Settings:
    defaults = Settings()
    return dataclasses.replace(
        defaults, api=dataclasses.replace(defaults.api, key_cache_seconds=seconds)
    )


async def test_a_key_revoked_elsewhere_is_refused_once_its_trusted_time_is_over(
    store: Store,
) -> None:
    clock = Clock()
    server = KeyRing(store, trusting(2.0), clock=clock)
    other_process = KeyRing(store, trusting(2.0))
    key, secret = await other_process.create("ops", "reader", ["support"])
    assert await server.authenticate(secret) == key
    await other_process.revoke("ops")
    clock.now += 1.9
    assert await server.authenticate(secret) == key  # still within its trusted time
    clock.now += 0.2
    assert await server.authenticate(secret) is None
    clock.now += 10
    assert await server.authenticate(secret) is None


async def test_a_key_revoked_by_the_same_ring_is_refused_at_once(store: Store) -> None:
    ring = KeyRing(store, trusting(60.0), clock=Clock())
    _, secret = await ring.create("ops", "reader", ["support"])
    assert await ring.authenticate(secret) is not None
    await ring.revoke("ops")
    assert await ring.authenticate(secret) is None


async def test_with_no_trusted_time_every_check_asks_the_store(store: Store) -> None:
    clock = Clock()
    server = KeyRing(store, trusting(0.0), clock=clock)
    other_process = KeyRing(store, trusting(0.0))
    _, secret = await other_process.create("ops", "reader", ["support"])
    assert await server.authenticate(secret) is not None
    await other_process.revoke("ops")
    assert await server.authenticate(secret) is None
