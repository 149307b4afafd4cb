"""GraphQL input types and their translation into what the service takes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from idgraph.api.types import ConsentStatus
from idgraph.domain import rfc3339
from idgraph.domain.model import IdentityNode
from idgraph.domain.normalize import KIND_PATTERN, KIND_RULE, Normalizer
from idgraph.domain.text import quoted
from idgraph.errors import IdentifierError


@strawberry.input(
    description="An identifier as `{kind, value}`, normalized like ingested ones: "
    '`{kind: "email", value: "Alice@Example.com"}`, `{kind: "device", value: "ab12"}`, '
    '`{kind: "account", value: "shop:42"}`.'
)
class IdentifierInput:
    kind: str = strawberry.field(description="`email`, `phone`, `cookie`, …, `device`, `account`.")
    value: str = strawberry.field(description="The raw value; `system:id` for an account.")

    def normalize(self, normalizer: Normalizer) -> IdentityNode:
        if not KIND_PATTERN.match(self.kind):
            raise IdentifierError(f"kind {quoted(self.kind)} {KIND_RULE}", "kind")
        return normalizer.parse_key(f"{self.kind}:{self.value}")

    def raw(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value}


@strawberry.input(description="A device: `{id, os?, model?}`.")
class DeviceInput:
    id: str = strawberry.field(description="Device id.")
    os: str | None = strawberry.field(default=None, description="Operating system.")
    model: str | None = strawberry.field(default=None, description="Model.")


@strawberry.input(description="An account in some system: `{system, id}`.")
class AccountInput:
    system: str = strawberry.field(description="System, matching `[a-z0-9][a-z0-9_.-]*`.")
    id: str = strawberry.field(description="The account's id in that system.")


@strawberry.input(description="Something the person did.")
class InteractionInput:
    type: str = strawberry.field(description="Kind, matching `[a-z][a-z0-9_]*`.")
    channel: str | None = strawberry.field(default=None, description="Channel, e.g. `web`.")
    properties: JSON | None = strawberry.field(
        default=None, description="Free-form details (a JSON object, ≤ 16 KiB)."
    )


@strawberry.input(description="A consent decision for a purpose.")
class ConsentInput:
    purpose: str = strawberry.field(description="Purpose, e.g. `marketing`.")
    status: ConsentStatus = strawberry.field(description="Granted or denied.")
    expires_at: datetime | None = strawberry.field(default=None, description="When a grant lapses.")


@strawberry.input(
    description="One event, in the same format and under the same rules as a line of an "
    "`idgraph ingest` file (see the README's event format)."
)
class EventInput:
    id: str = strawberry.field(description="Idempotency key (≤ 256 characters).")
    timestamp: datetime = strawberry.field(
        description="When it happened: from 1970 to the allowed clock skew ahead of "
        "idgraph's clock."
    )
    source: str = strawberry.field(description="Where the record came from: `web`, `crm`, ….")
    identifiers: list[IdentifierInput] | None = strawberry.field(
        default=None, description="Identifiers (≤ 50); kinds `device`/`account` are reserved."
    )
    device: DeviceInput | None = strawberry.field(default=None, description="A device.")
    account: AccountInput | None = strawberry.field(default=None, description="An account.")
    traits: JSON | None = strawberry.field(
        default=None, description="Attributes this source reports (a JSON object)."
    )
    interaction: InteractionInput | None = strawberry.field(
        default=None, description="Something the person did."
    )
    consent: ConsentInput | None = strawberry.field(default=None, description="A consent decision.")

    def raw(self) -> dict[str, Any]:
        """The event as the JSON object an ingest file would hold (unset fields left out)."""
        raw: dict[str, Any] = {
            "id": self.id,
            "timestamp": rfc3339.format(self.timestamp),
            "source": self.source,
        }
        if self.identifiers is not None:
            raw["identifiers"] = [i.raw() for i in self.identifiers]
        if self.device is not None:
            raw["device"] = _present(id=self.device.id, os=self.device.os, model=self.device.model)
        if self.account is not None:
            raw["account"] = {"system": self.account.system, "id": self.account.id}
        if self.traits is not None:
            raw["traits"] = self.traits
        if self.interaction is not None:
            i = self.interaction
            raw["interaction"] = _present(type=i.type, channel=i.channel, properties=i.properties)
        if self.consent is not None:
            c = self.consent
            expires = None if c.expires_at is None else rfc3339.format(c.expires_at)
            raw["consent"] = _present(purpose=c.purpose, status=c.status.value, expiresAt=expires)
        return raw


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
