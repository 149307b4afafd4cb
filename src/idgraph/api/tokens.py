"""Opaque ids and cursors: what the API hands out never carries personal data.

An identity node's key (``email:alice@example.com``) or an interaction's position must
not reach client caches, logs or URLs, not even merely encoded. So every id and cursor
that locates something by such data is encrypted with AES-SIV (RFC 5297): deterministic,
so the same node always gets the same id (clients may cache by id), and authenticated,
so a token this API did not make, or one altered by a single bit, is refused rather than
decoded. The key is derived from the server secret (:mod:`idgraph.secret`, label
``"ids"``), so every worker process and every restart hands out the same ids.

Forms (the prefixes cannot collide, and a customer id is random, ``cus_…``):

- ``idn_<base64url>``: an identity node (identifier, device, account);
- ``int_<base64url>``: an interaction;
- a cursor: ``<base64url>``, bound to its connection (``conflicts``, ``auditLog``,
  ``interactions``, ``identifiers``, ``devices``, ``accounts``, ``traits``) as
  associated data, so it is refused by any other connection.

The plaintext is a short JSON list of strings, padded with spaces to a multiple of
:data:`BLOCK` bytes so the token's length says little about the value's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import strawberry
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from idgraph.errors import InvalidInput
from idgraph.secret import ServerSecret

NODE_PREFIX = "idn_"
INTERACTION_PREFIX = "int_"
BLOCK = 32
SECRET_LABEL = "ids"

Part = str | datetime


@dataclass(frozen=True, slots=True)
class NodeRef:
    """An identity node, by its key."""

    key: str


@dataclass(frozen=True, slots=True)
class InteractionRef:
    """An interaction: an anchor that finds its customer (one of the identity nodes
    that performed it, or the customer's id), its time and its own id."""

    anchor: str
    at: datetime
    interaction_id: str


@dataclass(frozen=True, slots=True)
class CustomerRef:
    id: str


Ref = NodeRef | InteractionRef | CustomerRef


class Tokens:
    """Seals and opens the tokens of one server secret: build it once per application
    (it is thread-safe). A token costs some microseconds, made only when a client asks
    for an id or a cursor."""

    def __init__(self, key: bytes) -> None:
        self._siv = AESSIV(key)

    @classmethod
    def from_secret(cls, secret: ServerSecret) -> Tokens:
        return cls(secret.subkey(SECRET_LABEL))

    # ---- ids --------------------------------------------------------------------------

    def node_id(self, key: str) -> strawberry.ID:
        return strawberry.ID(NODE_PREFIX + self.seal("id:node", [key]))

    def interaction_id(self, anchor: str, at: datetime, interaction_id: str) -> strawberry.ID:
        token = self.seal("id:interaction", [anchor, at, interaction_id])
        return strawberry.ID(INTERACTION_PREFIX + token)

    def parse_id(self, id: str) -> Ref:
        """What a global id names. An id without an ``idn_``/``int_`` prefix is taken for
        a customer id (an unknown one simply finds nothing); an ``idn_``/``int_`` id this
        API did not make is refused (InvalidInput)."""
        if id.startswith(NODE_PREFIX):
            parts = self.open("id:node", id.removeprefix(NODE_PREFIX), 1)
            if parts is not None:
                return NodeRef(parts[0])
        elif id.startswith(INTERACTION_PREFIX):
            parts = self.open("id:interaction", id.removeprefix(INTERACTION_PREFIX), 3)
            at = None if parts is None else _time(parts[1])
            if parts is not None and at is not None:
                return InteractionRef(parts[0], at, parts[2])
        else:
            return CustomerRef(id)
        raise InvalidInput("id: not a valid id from this API")

    def cursors(self, connection: str) -> Cursors:
        return Cursors(self, connection)

    # ---- the envelope -----------------------------------------------------------------

    def seal(self, scope: str, parts: Sequence[Part]) -> str:
        """A token holding ``parts`` that only :meth:`open` with the same ``scope`` opens."""
        plain = [p.isoformat() if isinstance(p, datetime) else p for p in parts]
        raw = json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()
        raw += b" " * (-len(raw) % BLOCK)
        sealed = self._siv.encrypt(raw, [scope.encode()])
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, scope: str, token: str, n: int) -> list[str] | None:
        """The ``n`` strings :meth:`seal` put in ``token`` for ``scope``; None for
        anything else (another scope, another secret, a changed byte, garbage)."""
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            parts = json.loads(self._siv.decrypt(sealed, [scope.encode()]))
        except (ValueError, InvalidTag):  # binascii.Error and bad UTF-8 are ValueErrors
            return None
        if not isinstance(parts, list) or len(parts) != n:
            return None
        return parts if all(isinstance(p, str) for p in parts) else None


@dataclass(frozen=True, slots=True)
class Cursors:
    """The cursors of one connection: positions (tuples of strings and datetimes) in,
    opaque strings out. A cursor of another connection is refused, like a forged one."""

    tokens: Tokens
    connection: str

    def encode(self, position: Sequence[Part]) -> str:
        return self.tokens.seal(f"cursor:{self.connection}", position)

    def decode(self, cursor: str, n: int) -> list[str]:
        """The ``n`` strings of ``cursor`` (an ``after`` argument); InvalidInput unless
        this connection made it. The message never quotes what the caller sent."""
        parts = self.tokens.open(f"cursor:{self.connection}", cursor, n)
        if parts is None:
            raise InvalidInput(f"after: not a cursor of {self.connection} from this API")
        return parts

    def decode_time(self, value: str) -> datetime:
        at = _time(value)
        if at is None:
            raise InvalidInput(f"after: not a cursor of {self.connection} from this API")
        return at


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
