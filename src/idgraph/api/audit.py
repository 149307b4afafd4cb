"""The audit trail of a request: every read or change of personal data is collected
while the request runs and written in one ``append_audit`` call when it ends, so a
read costs one store write at most, however many customers it touched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import strawberry
from strawberry.extensions import SchemaExtension

from idgraph.domain.access import AuditEntry
from idgraph.domain.model import utcnow
from idgraph.store.port import Store


@dataclass
class AuditTrail:
    """The entries of one request: who (the key's name), under which purpose."""

    actor: str
    purpose: str
    entries: list[AuditEntry] = field(default_factory=list)

    def record(self, operation: str, customer_ids: Iterable[str | None], detail: str = "") -> None:
        now = utcnow()
        for customer_id in dict.fromkeys(customer_ids):
            self.entries.append(
                AuditEntry(now, self.actor, self.purpose, operation, customer_id, detail)
            )

    async def flush(self, store: Store) -> None:
        if self.entries:
            entries, self.entries = self.entries, []
            await store.append_audit(entries)


class FlushAudit(SchemaExtension):
    """Writes the request's audit trail once the operation has run."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        await context.audit.flush(context.graph.store)


@strawberry.type(description="One read or change of personal data: who, why, what, when.")
class AuditRecord:
    at: datetime = strawberry.field(description="When (UTC).")
    actor: str = strawberry.field(description="The API key's name (`cli` for the CLI).")
    purpose: str = strawberry.field(description="The purpose the request declared.")
    operation: str = strawberry.field(
        description="`resolve`, `customer`, `node`, `explainLink`, `ingest`, `link`, "
        "`unlink`, `setConsent`, `forget`."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        description="The customer concerned; null for a lookup that found nothing."
    )
    detail: str = strawberry.field(
        description="Steward actions: the event or parts, and why. `miss`: the lookup "
        "found nothing; `hidden`: it found only what consent hides for the purpose."
    )

    @classmethod
    def from_entry(cls, e: AuditEntry) -> AuditRecord:
        return cls(
            at=e.at,
            actor=e.actor,
            purpose=e.purpose,
            operation=e.operation,
            customer_id=None if e.customer_id is None else strawberry.ID(e.customer_id),
            detail=e.detail,
        )
