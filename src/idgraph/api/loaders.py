"""Per-request DataLoaders over the store's batch reads.

Every field that needs store data for one customer asks a loader; the loader gathers
the keys asked for during one tick of the event loop and makes one store call for all
of them. A page of N customers therefore costs one call per kind of data, not N.
Loaders cache for the lifetime of one request only (they are built per request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, TypeVar

from strawberry.dataloader import DataLoader

from idgraph.domain.model import (
    ConsentRecord,
    CustomerRecord,
    InteractionView,
    NodeRecord,
    TraitRecord,
)
from idgraph.store.port import Profile, ProfileRead, Store

V = TypeVar("V")


def _batched(
    fetch: Callable[[Sequence[str]], Awaitable[Mapping[str, V]]], missing: V
) -> DataLoader[str, V]:
    async def load(keys: list[str]) -> list[V]:
        found = await fetch(keys)
        return [found.get(key, missing) for key in keys]

    return DataLoader(load_fn=load)


class InteractionsKey(NamedTuple):
    """One customer's page of interactions; pages asked with the same arguments (say,
    ``first: 20`` for every customer of a list) are fetched in one store call."""

    customer_id: str
    limit: int
    before: tuple[datetime, str] | None
    types: tuple[str, ...] | None
    since: datetime | None


def _interactions(store: Store) -> DataLoader[InteractionsKey, list[InteractionView]]:
    async def load(keys: list[InteractionsKey]) -> list[list[InteractionView]]:
        groups: dict[
            tuple[int, tuple[datetime, str] | None, tuple[str, ...] | None, datetime | None],
            list[str],
        ] = {}
        for key in keys:
            signature = (key.limit, key.before, key.types, key.since)
            groups.setdefault(signature, []).append(key.customer_id)
        found: dict[InteractionsKey, list[InteractionView]] = {}
        for (limit, before, types, since), ids in groups.items():
            pages = await store.interactions_of(
                ids, limit=limit, before=before, types=types, since=since
            )
            for cid, views in pages.items():
                found[InteractionsKey(cid, limit, before, types, since)] = views
        return [found.get(key, []) for key in keys]

    return DataLoader(load_fn=load)


class CountKey(NamedTuple):
    """How many interactions of one customer pass the filters of an ``interactions``
    page; counts under the same filters are fetched in one store call."""

    customer_id: str
    types: tuple[str, ...] | None = None
    since: datetime | None = None


def _interaction_counts(store: Store) -> DataLoader[CountKey, int]:
    async def load(keys: list[CountKey]) -> list[int]:
        groups: dict[tuple[tuple[str, ...] | None, datetime | None], list[str]] = {}
        for key in keys:
            groups.setdefault((key.types, key.since), []).append(key.customer_id)
        found: dict[CountKey, int] = {}
        for (types, since), ids in groups.items():
            counts = await store.count_interactions(ids, types=types, since=since)
            for cid, count in counts.items():
                found[CountKey(cid, types, since)] = count
        return [found.get(key, 0) for key in keys]

    return DataLoader(load_fn=load)


def _profiles(store: Store) -> DataLoader[tuple[str, ProfileRead], Profile | None]:
    """The customer of each identity key with the parts of it a query will read, in one
    store call (one read transaction) per kind of read."""

    async def load(requests: list[tuple[str, ProfileRead]]) -> list[Profile | None]:
        groups: dict[ProfileRead, list[str]] = {}
        for key, read in requests:
            groups.setdefault(read, []).append(key)
        found: dict[tuple[str, ProfileRead], Profile] = {}
        for read, keys in groups.items():
            for key, profile in (await store.profiles(keys, read)).items():
                found[key, read] = profile
        return [found.get(request) for request in requests]

    return DataLoader(load_fn=load)


class Loaders:
    """The loaders of one request."""

    def __init__(self, store: Store) -> None:
        self.customer_id_of_key: DataLoader[str, str | None] = _batched(store.customer_ids_of, None)
        self.customer: DataLoader[str, CustomerRecord | None] = _batched(store.customers, None)
        self.nodes: DataLoader[str, list[NodeRecord]] = _batched(store.nodes_of, [])
        self.traits: DataLoader[str, list[TraitRecord]] = _batched(store.traits_of, [])
        self.consents: DataLoader[str, list[ConsentRecord]] = _batched(store.consents_of, [])
        self.interactions = _interactions(store)
        self.interaction_counts = _interaction_counts(store)
        self.profiles = _profiles(store)

    async def profile(self, key: str, read: ProfileRead) -> Profile | None:
        """The customer of an identity key with the parts ``read`` names; each part is
        primed into the loader that serves it, so the fields that read it later find it
        there. The priming is done here, not by the batch function: that would hold
        these loaders, which hold it, a reference cycle per request (see
        tests/api/test_reference_cycles.py)."""
        profile = await self.profiles.load((key, read))
        if profile is None:
            self.customer_id_of_key.prime(key, None)
        else:
            self.prime(key, profile, read)
        return profile

    def prime(self, key: str, profile: Profile, read: ProfileRead) -> None:
        """What ``profile`` holds, in the loaders that serve each part of it."""
        cid = profile.customer.id
        self.customer_id_of_key.prime(key, cid)
        self.customer.prime(cid, profile.customer)
        if profile.nodes is not None:
            self.nodes.prime(cid, profile.nodes)
        if profile.consents is not None:
            self.consents.prime(cid, profile.consents)
        if profile.traits is not None:
            self.traits.prime(cid, profile.traits)
        if profile.interactions is not None and read.interactions is not None:
            page = read.interactions
            self.interactions.prime(
                InteractionsKey(cid, page.limit, page.before, page.types, page.since),
                profile.interactions,
            )

    async def customer_of_key(self, key: str) -> CustomerRecord | None:
        """The customer of an identity key, by its customer id (both loaders cache)."""
        customer_id = await self.customer_id_of_key.load(key)
        return None if customer_id is None else await self.customer.load(customer_id)
