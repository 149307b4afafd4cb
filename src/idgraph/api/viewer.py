"""``viewer``: the calling key as the API sees it, so a client can tell what it may ask
before it asks. It holds nothing secret (never the key or its hash)."""

from __future__ import annotations

from enum import Enum

import strawberry

from idgraph.domain.access import ROLE_PERMISSIONS, ApiKey


@strawberry.enum(description="A key's role: the set of permissions it has.")
class Role(Enum):
    ADMIN = strawberry.enum_value("admin", description="Everything.")
    STEWARD = strawberry.enum_value(
        "steward", description="Link, unlink, conflicts, explainLink, setConsent, reads."
    )
    WRITER = strawberry.enum_value("writer", description="`ingest` and `setConsent`.")
    READER = strawberry.enum_value("reader", description="Profile reads and `resolve`.")
    RESOLVER = strawberry.enum_value(
        "resolver", description="`resolve` to a customer id, nothing more."
    )


@strawberry.enum(description="What a role lets a key do.")
class Permission(Enum):
    READ_PROFILE = strawberry.enum_value(
        "read_profile", description="Read a customer's fields (`customer`, `node`, …)."
    )
    RESOLVE = strawberry.enum_value("resolve", description="`resolve` an identifier.")
    INGEST = strawberry.enum_value("ingest", description="`ingest` events.")
    SET_CONSENT = strawberry.enum_value("set_consent", description="`setConsent`.")
    STEWARD = strawberry.enum_value(
        "steward", description="`link`, `unlink`, `conflicts`, `explainLink`."
    )
    FORGET = strawberry.enum_value("forget", description="`forget` (erasure).")
    READ_AUDIT = strawberry.enum_value("read_audit", description="`auditLog`.")
    OPERATE = strawberry.enum_value("operate", description="`/metrics`.")


@strawberry.type(description="The API key making the request.")
class Viewer:
    name: str = strawberry.field(description="The key's name (the actor in the audit log).")
    role: Role = strawberry.field(description="Its role.")
    permissions: list[Permission] = strawberry.field(
        description="What its role lets it do, in a stable order."
    )
    purposes: list[str] = strawberry.field(
        description="The purposes it may declare in `X-Purpose`, in a stable order."
    )
    purpose: str | None = strawberry.field(
        description="The purpose this request declared, if it is configured and the key "
        "may use it; else null (and fields that need a purpose are refused)."
    )

    @classmethod
    def of(cls, key: ApiKey, purpose: str | None) -> Viewer:
        return cls(
            name=key.name,
            role=Role(key.role.value),
            permissions=[Permission(p.value) for p in sorted(ROLE_PERMISSIONS[key.role])],
            purposes=sorted(key.purposes),
            purpose=purpose if purpose is not None and key.may_use(purpose) else None,
        )
