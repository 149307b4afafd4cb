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
from idgraph.store.port import Store

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


def _customers_by_key(
    store: Store,
    ids: DataLoader[str, str | None],
    customers: DataLoader[str, CustomerRecord | None],
) -> DataLoader[str, CustomerRecord | None]:
    """The customer of each identity key: both store reads in one dispatch (the second
    needs the first), their answers primed into ``ids`` and ``customers``."""

    async def load(keys: list[str]) -> list[CustomerRecord | None]:
        found = await store.customer_ids_of(keys)
        records = await store.customers(sorted(set(found.values()))) if found else {}
        for key in keys:
            ids.prime(key, found.get(key))
        for customer_id, record in records.items():
            customers.prime(customer_id, record)
        return [records.get(found[key]) if key in found else None for key in keys]

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
        self.interaction_counts: DataLoader[str, int] = _batched(store.count_interactions, 0)
        self.customer_by_key = _customers_by_key(store, self.customer_id_of_key, self.customer)

    async def customer_of_key(self, key: str) -> CustomerRecord | None:
        """The customer of a key whose customer id this request has looked up already
        (else :attr:`customer_by_key` reads both in one dispatch)."""
        customer_id = await self.customer_id_of_key.load(key)
        return None if customer_id is None else await self.customer.load(customer_id)
