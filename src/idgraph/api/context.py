"""What every resolver receives as ``info.context``: the service, the caller's key and
purpose, the application's token maker, and per-request state (loaders, consent views,
the audit trail)."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from idgraph.api.access import check
from idgraph.api.audit import AuditTrail, AuditWriter
from idgraph.api.loaders import Loaders
from idgraph.api.metrics import Metrics
from idgraph.api.privacy import Privacy
from idgraph.api.tokens import Tokens
from idgraph.config import ApiSettings
from idgraph.domain.access import ApiKey, Permission
from idgraph.domain.consent import Purpose
from idgraph.domain.model import utcnow
from idgraph.service import IdentityGraph

MAX_PURPOSE_LENGTH = 64


@dataclass
class Context:
    graph: IdentityGraph
    metrics: Metrics
    key: ApiKey
    purpose_name: str  # the X-Purpose header, as sent (cut to MAX_PURPOSE_LENGTH)
    tokens: Tokens  # one per application: opaque ids and cursors
    audit_writer: AuditWriter  # one per application: writes the trails of all requests
    purpose: Purpose | None = field(init=False)  # None unless configured
    loaders: Loaders = field(init=False)
    privacy: Privacy = field(init=False)
    audit: AuditTrail = field(init=False)
    granted: set[Permission] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.purpose_name = self.purpose_name[:MAX_PURPOSE_LENGTH]
        self.purpose = self.graph.settings.purpose(self.purpose_name)
        self.refresh()
        self.audit = AuditTrail(self.key.name, self.purpose_name, self.audit_writer)

    def refresh(self) -> None:
        """Forget what the request has read so far: a mutation that changed the graph
        calls it, so that its payload reads the graph (and consent) as it is now."""
        self.loaders = Loaders(self.graph.store)
        self.privacy = Privacy(self.loaders, self.purpose, utcnow())

    @property
    def actor(self) -> str:
        return self.key.name

    def check(self, permission: Permission) -> None:
        """Raise :class:`~idgraph.errors.Forbidden` unless the key may use ``permission``
        for the request's purpose (see :func:`idgraph.api.access.check`); what it grants
        is decided once per request, however many fields need it."""
        if permission not in self.granted:
            check(self.key, self.purpose, permission)
            self.granted.add(permission)

    def may(self, permission: Permission) -> bool:
        return self.key.may(permission)

    @property
    def settings(self) -> ApiSettings:
        return self.graph.settings.api


Info = strawberry.Info[Context, None]
