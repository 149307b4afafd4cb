"""Checks that what the API hands out as ids and cursors holds no personal data, in the
clear or merely encoded; and the tests' own token maker (same secret as the apps)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from idgraph.api.tokens import Tokens
from idgraph.secret import ServerSecret
from tests.conftest import SECRET

# Response fields that carry ids or cursors (never data the caller may be shown).
ID_FIELDS = frozenset(
    {
        "id",
        "cursor",
        "startCursor",
        "endCursor",
        "customerId",
        "customerIds",
        "aliases",
        "splitFrom",
    }
)

tokens = Tokens.from_secret(ServerSecret(SECRET.encode()))


def handed_out(tree: Any) -> Iterator[str]:
    """Every id and cursor in a response."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name in ID_FIELDS:
                yield from (v for v in (value if isinstance(value, list) else [value]) if v)
            else:
                yield from handed_out(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from handed_out(item)


def readings(token: str) -> list[str]:
    """The token, and what it says when decoded as base64 or base64url, whole or after
    a prefix (``idn_``, ``Interaction:``, …)."""
    texts = [token]
    for candidate in {token, token.split("_", 1)[-1], token.split(":", 1)[-1]}:
        padded = candidate + "=" * (-len(candidate) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            with contextlib.suppress(ValueError):  # binascii.Error is one
                texts.append(decode(padded).decode("utf-8", "replace"))
    return texts


# Shorter values turn up in random base64 text by chance: tests use longer ones.
MIN_CHECKED = 5


def assert_opaque(result: Any, personal: Iterable[str]) -> int:
    """No id or cursor of ``result`` holds any of ``personal`` (at least
    :data:`MIN_CHECKED` characters long) in any of its readings. Returns how many ids and
    cursors were checked."""
    values = [p for p in personal if len(p) >= MIN_CHECKED]
    checked = 0
    for token in handed_out(result):
        checked += 1
        for text in readings(token):
            leaked = [v for v in values if v in text]
            assert not leaked, (token, text, leaked)
    return checked
