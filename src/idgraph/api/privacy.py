"""What consent lets one request see, for its purpose (DESIGN.md, "Consent and access").

The policy itself is :func:`idgraph.domain.consent.evaluate`; this module applies it to
identity keys: an identifier follows its own decision (else the customer's), a device
or an account follows the customer's. Hidden keys are answered like unknown ones.
"""

from __future__ import annotations

from datetime import datetime

from idgraph.api.loaders import Loaders
from idgraph.domain.consent import ConsentView, Purpose, evaluate
from idgraph.domain.model import ACCOUNT, DEVICE, split_key
from idgraph.errors import Forbidden


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

    async def shown_key(self, key: str) -> str | None:
        """``key`` if it is in the graph and consent lets it be seen, else None."""
        customer_id = await self.loaders.customer_id_of_key.load(key)
        if customer_id is None:
            return None
        return key if shows(await self.view(customer_id), key) else None
