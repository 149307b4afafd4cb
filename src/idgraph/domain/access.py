"""Who may do what: roles, API keys (stored hashed), and the audit trail's entries."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

KEY_PREFIX = "idg_"


class Role(StrEnum):
    ADMIN = "admin"
    STEWARD = "steward"
    WRITER = "writer"
    READER = "reader"
    RESOLVER = "resolver"


class Permission(StrEnum):
    READ_PROFILE = "read_profile"  # identifiers, devices, accounts, traits, interactions
    RESOLVE = "resolve"  # an identifier to a customer id, nothing more
    INGEST = "ingest"
    SET_CONSENT = "set_consent"
    STEWARD = "steward"  # link, unlink, conflicts, explainLink
    FORGET = "forget"
    READ_AUDIT = "read_audit"
    OPERATE = "operate"  # metrics, GraphiQL


class Operation(StrEnum):
    """What an audit entry records: the API field or CLI command that read or changed
    personal data."""

    RESOLVE = "resolve"
    CUSTOMER = "customer"
    NODE = "node"
    EXPLAIN_LINK = "explainLink"
    INGEST = "ingest"
    LINK = "link"
    UNLINK = "unlink"
    SET_CONSENT = "setConsent"
    FORGET = "forget"
    EXPORT = "export"
    CUSTOMERS = "customers"
    SEGMENT_EXPORT = "segment export"
    PURGE = "purge"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.STEWARD: frozenset(
        {Permission.STEWARD, Permission.SET_CONSENT, Permission.READ_PROFILE, Permission.RESOLVE}
    ),
    Role.WRITER: frozenset({Permission.INGEST, Permission.SET_CONSENT}),
    Role.READER: frozenset({Permission.READ_PROFILE, Permission.RESOLVE}),
    Role.RESOLVER: frozenset({Permission.RESOLVE}),
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A caller. Only ``secret_hash`` is stored; the secret is shown once, at creation."""

    name: str
    role: Role
    purposes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    def may(self, permission: Permission) -> bool:
        return self.revoked_at is None and permission in ROLE_PERMISSIONS[self.role]

    def may_use(self, purpose: str) -> bool:
        return self.revoked_at is None and purpose in self.purposes


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: secrets are 256 random bits, not guessable passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A read or change of personal data: who, under which purpose, what, when."""

    at: datetime
    actor: str
    purpose: str
    operation: str
    customer_id: str | None
    detail: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What ``forget`` removed, counted; the erased values themselves are not echoed."""

    customer_id: str
    identity_nodes: dict[str, int]
    aliases: int
    links: int
    traits: int
    interactions: int
    consents: int
