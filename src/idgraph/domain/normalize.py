"""Identifier normalization: emails, phones (E.164), devices, accounts, custom kinds.

Every value is trimmed, then refused if it is not acceptable text (see
:mod:`idgraph.domain.text`): lone surrogates and control characters never reach a key.
"""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from idgraph.domain.model import ACCOUNT, DEVICE, IdentityNode
from idgraph.domain.text import quoted, text_problem
from idgraph.errors import IdentifierError

# Kinds, interaction types and purposes. ``\Z``, not ``$``: ``$`` also matches before a
# final newline.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
KIND_RULE = "must match [a-z][a-z0-9_]* (at most 64 characters)"
SYSTEM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.\-]*\Z")
RESERVED_KINDS = frozenset({DEVICE, ACCOUNT})
MAX_VALUE_LENGTH = 512


class Normalizer:
    """Turns raw ``{kind, value}`` pairs into identity nodes with stable keys.

    Callers on a hot path cache its results (see ``EventParser``)."""

    def __init__(self, default_region: str = "US") -> None:
        self.default_region = default_region

    def identifier(self, kind: str, value: str) -> IdentityNode:
        if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
            raise IdentifierError(f"kind {quoted(kind)} {KIND_RULE}", "kind")
        if kind in RESERVED_KINDS:
            raise IdentifierError(
                f"kind {kind!r} is reserved: use the event's {kind!r} field", "kind"
            )
        value = _plain(value)
        if kind == "email":
            value = _normalize_email(value)
        elif kind == "phone":
            value = self._normalize_phone(value)
        return IdentityNode(f"{kind}:{value}", kind, value)

    def device(self, device_id: str) -> IdentityNode:
        value = _plain(device_id, "id")
        return IdentityNode(f"{DEVICE}:{value}", DEVICE, value)

    def account(self, system: str, account_id: str) -> IdentityNode:
        system = _plain(system, "system").lower()
        if not SYSTEM_PATTERN.match(system):
            raise IdentifierError(
                f"system {quoted(system)} must match [a-z0-9][a-z0-9_.-]*", "system"
            )
        account_id = _plain(account_id, "id")
        value = f"{system}:{account_id}"
        return IdentityNode(
            f"{ACCOUNT}:{value}", ACCOUNT, value, {"system": system, "id": account_id}
        )

    def parse_key(self, key: str) -> IdentityNode:
        """Normalize a key typed by a person: ``email:Alice@Example.com``, ``account:shop:42``."""
        kind, sep, value = key.partition(":")
        if not sep:
            raise IdentifierError(f"{quoted(key)} is not kind:value (e.g. email:alice@example.com)")
        if kind == DEVICE:
            return self.device(value)
        if kind == ACCOUNT:
            system, sep, account_id = value.partition(":")
            if not sep:
                raise IdentifierError(f"{quoted(key)} is not account:system:id")
            return self.account(system, account_id)
        return self.identifier(kind, value)

    def _normalize_phone(self, value: str) -> str:
        try:
            number = phonenumbers.parse(value, self.default_region)
        except phonenumbers.NumberParseException as exc:
            raise IdentifierError(f"invalid phone number: {exc}", "value") from None
        if not phonenumbers.is_valid_number(number):
            raise IdentifierError("invalid phone number: not a valid number", "value")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _plain(value: object, field: str = "value") -> str:
    """``value`` trimmed, if it is acceptable text of at most MAX_VALUE_LENGTH characters."""
    if not isinstance(value, str):
        raise IdentifierError(f"must be a string, got {type(value).__name__}", field)
    value = value.strip()
    if len(value) > MAX_VALUE_LENGTH:
        raise IdentifierError(f"longer than {MAX_VALUE_LENGTH} characters", field)
    problem = text_problem(value)
    if problem:
        raise IdentifierError(problem, field)
    return value


# Plain ASCII addresses (nearly all of them) are checked by this pattern; anything
# else goes through email-validator, which costs ~50 µs a call.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"^(?=.{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z]{{2,63}}$")


_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def plain_email(folded: str) -> bool:
    """True when a lower-cased address is surely valid without asking email-validator."""
    return (
        len(folded) <= 254
        and _PLAIN_EMAIL.match(folded) is not None
        and folded.rsplit(".", 1)[1] not in _SPECIAL_USE_TLDS
        and "--" not in folded.partition("@")[2]  # IDNA rules apply to such labels
    )


def _normalize_email(value: str) -> str:
    folded = value.lower()
    if plain_email(folded):
        return folded
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise IdentifierError(f"invalid email address: {exc}", "value") from None
    return result.normalized.lower()
