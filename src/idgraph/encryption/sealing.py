"""Trait values and interaction properties, sealed with their identity node's DEK.

A sealed value is text, so both stores keep it as they keep any string:
``idgraph:sealed:1:`` then base64url of the DEK id (16 bytes), a random nonce (12) and
the AES-256-GCM ciphertext of the value's JSON with its tag. Interaction properties
become ``{"idgraph:sealed": "<sealed text>"}`` (no properties stay ``{}``).

The associated data binds each ciphertext to the row it belongs to: a trait value to its
node key, trait name and event id, interaction properties to the interaction id; and a
sealed value opens only with the DEK of the node it is stored on. A ciphertext copied
to another row, trait or node does not open.

A value whose DEK the keyring no longer holds was shredded (its node was erased); reads
leave it out (:meth:`Sealer.open_traits` omits the report, :meth:`Sealer.open_interactions`
gives empty properties). Anything else that does not open is a :class:`StoreError`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idgraph.domain.model import (
    InteractionRecord,
    InteractionView,
    JSONValue,
    TraitRecord,
    TraitReport,
)
from idgraph.encryption.keyring import ID_BYTES, Keyring
from idgraph.errors import StoreError

PREFIX = "idgraph:sealed:1:"
PROPERTIES = "idgraph:sealed"  # the one key of sealed interaction properties
NONCE_BYTES = 12

Trait = TypeVar("Trait", TraitReport, TraitRecord)
Interaction = TypeVar("Interaction", InteractionRecord, InteractionView)

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class Seal(Enum):
    """What a stored value is, to the keyring at hand (see :meth:`Sealer.state`)."""

    OPENS = "opens"
    SHREDDED = "shredded"
    PLAIN = "plain"  # not a sealed value: stored without a data key
    FOREIGN = "foreign"  # sealed, but not by this keyring, or altered, or for another row


def trait_ad(trait: TraitReport | TraitRecord) -> bytes:
    """The row a trait value belongs to: its node, name and event (one report each)."""
    return b"trait" + b"".join(
        len(part).to_bytes(4, "big") + part  # length-prefixed: one encoding per row
        for part in (trait.key.encode(), trait.name.encode(), trait.event_id.encode())
    )


def interaction_ad(interaction_id: str) -> bytes:
    return b"interaction\0" + interaction_id.encode()


class Sealer:
    """Seals and opens the values of one keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    # ---- write ---------------------------------------------------------------------

    def seal_traits(self, traits: list[Trait]) -> list[Trait]:
        ciphers = self.keyring.ciphers_for({t.key for t in traits})
        return [_with_value(t, self._seal(*ciphers[t.key], t.value, trait_ad(t))) for t in traits]

    def seal_interactions(self, records: list[InteractionRecord]) -> list[InteractionRecord]:
        return self._seal_properties(records, [r.key for r in records])

    def seal_views(self, views: list[InteractionView]) -> list[InteractionView]:
        """Interactions read from a copy, sealed with the DEK of their (first) node."""
        return self._seal_properties(views, [v.keys[0] for v in views])

    def _seal_properties(self, items: list[Interaction], subjects: list[str]) -> list[Interaction]:
        pairs = list(zip(items, subjects, strict=True))
        ciphers = self.keyring.ciphers_for({s for i, s in pairs if i.properties})
        return [
            _with_properties(
                i, {PROPERTIES: self._seal(*ciphers[s], dict(i.properties), interaction_ad(i.id))}
            )
            if i.properties
            else i
            for i, s in pairs
        ]

    def _seal(self, dek_id: bytes, cipher: AESGCM, value: JSONValue, ad: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = cipher.encrypt(nonce, _encode(value), ad)
        return PREFIX + base64.urlsafe_b64encode(dek_id + nonce + sealed).decode()

    # ---- read ----------------------------------------------------------------------

    def open_traits(self, traits: list[TraitRecord]) -> list[TraitRecord]:
        """The reports with their values opened; shredded ones left out."""
        self.keyring.load(self.keyring.dek_id(t.key) for t in traits)
        opened = []
        for t in traits:
            found, value = self._open(t.value, trait_ad(t), (t.key,))
            if found:
                opened.append(_with_value(t, value))
        return opened

    def open_interactions(self, views: list[InteractionView]) -> list[InteractionView]:
        """The interactions with their properties opened; shredded ones get none."""
        self.keyring.load(self.keyring.dek_id(k) for v in views if v.properties for k in v.keys)
        opened = []
        for v in views:
            if not v.properties:
                opened.append(v)
                continue
            found, value = self._open(
                _sealed_properties(v.properties), interaction_ad(v.id), v.keys
            )
            properties = value if found and isinstance(value, dict) else {}
            opened.append(_with_properties(v, properties))
        return opened

    def _open(
        self, stored: JSONValue, ad: bytes, node_keys: Iterable[str]
    ) -> tuple[bool, JSONValue]:
        """(True, the value) if it opens; (False, None) if its DEK was shredded."""
        state, value = self._try(stored, ad, node_keys)
        if state is Seal.FOREIGN or state is Seal.PLAIN:
            raise StoreError(
                "a stored value is not sealed by this store's keyring (written without the "
                "data key, altered, or copied from another row)"
            )
        return state is Seal.OPENS, value

    def state(self, stored: JSONValue, ad: bytes, node_keys: Iterable[str]) -> Seal:
        """What ``stored`` is to this keyring (for a restore: keep or seal)."""
        return self._try(stored, ad, node_keys)[0]

    def trait_state(self, trait: TraitRecord) -> Seal:
        return self.state(trait.value, trait_ad(trait), (trait.key,))

    def interaction_state(self, view: InteractionView) -> Seal:
        if not view.properties:
            return Seal.OPENS
        return self.state(_sealed_properties(view.properties), interaction_ad(view.id), view.keys)

    def _try(
        self, stored: JSONValue, ad: bytes, node_keys: Iterable[str]
    ) -> tuple[Seal, JSONValue]:
        if not isinstance(stored, str) or not stored.startswith(PREFIX):
            return Seal.PLAIN, None
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX) :])
        except (binascii.Error, ValueError):
            return Seal.FOREIGN, None
        dek_id, nonce = raw[:ID_BYTES], raw[ID_BYTES : ID_BYTES + NONCE_BYTES]
        sealed = raw[ID_BYTES + NONCE_BYTES :]
        if dek_id not in {self.keyring.dek_id(k) for k in node_keys}:
            return Seal.FOREIGN, None  # sealed for another node
        cipher = self.keyring.cipher(dek_id)
        if cipher is None:
            return Seal.SHREDDED, None
        try:
            value: JSONValue = _decode(cipher.decrypt(nonce, sealed, ad))
        except (InvalidTag, ValueError, msgspec.DecodeError):
            return Seal.FOREIGN, None
        return Seal.OPENS, value


# Built with their constructors, several times cheaper than dataclasses.replace: every
# trait and interaction written or read passes here.


def _with_value(trait: Trait, value: JSONValue) -> Trait:
    # TraitReport and TraitRecord have the same fields, in the same order.
    return type(trait)(trait.key, trait.name, value, trait.source, trait.at, trait.event_id)


def _with_properties(item: Interaction, properties: dict[str, JSONValue]) -> Interaction:
    if isinstance(item, InteractionRecord):
        return InteractionRecord(
            item.id,
            item.key,
            item.type,
            item.channel,
            item.at,
            item.source,
            properties,
            item.event_id,
        )
    return InteractionView(
        item.id,
        item.type,
        item.channel,
        item.at,
        item.source,
        properties,
        item.event_id,
        item.keys,
    )


def _sealed_properties(properties: object) -> JSONValue:
    """The sealed text of sealed properties; anything else as it is (not sealed)."""
    if isinstance(properties, dict) and list(properties) == [PROPERTIES]:
        value: JSONValue = properties[PROPERTIES]
        return value
    return None
