"""What consent lets one request see, for its purpose (docs/concepts.md, "Consent").

The policy itself is :func:`idgraph.domain.consent.evaluate`; this module applies it to
identity keys: an identifier follows its own decision (else the customer's), a device
or an account follows the customer's.

Hidden keys are answered like unknown ones, and found the same way: :meth:`Privacy.visible`
looks every key up and evaluates consent for it whether or not it is in the graph, so
neither the answer nor the work done tells a hidden key from an unknown one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from idgraph.api.loaders import Loaders
from idgraph.domain.consent import ConsentView, Purpose, evaluate
from idgraph.domain.model import ACCOUNT, DEVICE, split_key
from idgraph.errors import Forbidden

# The customer an unknown key is evaluated against: no customer has this id (customer ids
# are ``cus_…``), so its consent records are none, looked up like anyone's.
NOBODY = "cus_"


def shows(view: ConsentView, key: str) -> bool:
    """Whether consent lets an identity node with this key be returned."""
    kind, _ = split_key(key)
    if kind in (DEVICE, ACCOUNT):
        return view.customer_allows
    return view.allows_identifier(key)


class Privacy:
    """Consent views of one request, one per customer, evaluated at one instant."""

    def __init__(self, loaders: Loaders, purpose: Purpose | None, now: datetime) -> None:
        self.loaders = loaders
        self.purpose = purpose
        self.now = now
        self._views: dict[str, ConsentView] = {}

    async def view(self, customer_id: str) -> ConsentView:
        if self.purpose is None:  # fields needing a purpose are refused before this
            raise Forbidden("send an X-Purpose header naming a configured purpose")
        view = self._views.get(customer_id)
        if view is None:
            records = await self.loaders.consents.load(customer_id)
            view = self._views[customer_id] = evaluate(records, self.purpose, self.now)
        return view

    async def visible(self, keys: Sequence[str]) -> dict[str, str]:
        """The customer id of each of ``keys`` that is in the graph and that consent lets
        be seen; hidden and unknown keys are both simply absent, after the same work:
        one batched lookup, then a consent view and evaluation for every key."""
        customer_ids = await self.loaders.customer_id_of_key.load_many(keys)
        views = await asyncio.gather(*(self.view(cid or NOBODY) for cid in customer_ids))
        return {
            key: cid
            for key, cid, view in zip(keys, customer_ids, views, strict=True)
            if shows(view, key) and cid is not None
        }

    async def shown_key(self, key: str) -> str | None:
        """``key`` if it is in the graph and consent lets it be seen, else None."""
        return key if key in await self.visible([key]) else None
