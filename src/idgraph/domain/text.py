"""Which text idgraph accepts: one rule for every string that can reach a store.

Refused everywhere:

- lone surrogates (U+D800–U+DFFF): a JSON escape such as ``"\\ud800"`` makes one, but
  UTF-8 cannot encode it, so no store could keep it and no response could carry it;
- control characters: C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F).

Free text (the string values inside traits and interaction properties) may also hold
tab, line feed and carriage return. Names, ids, sources, kinds and identifier values
may not: there they are typing or encoding mistakes, and they would corrupt keys and
the lines of a log or an export.
"""

from __future__ import annotations

import re

_STRICT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def text_problem(value: str, *, free: bool = False) -> str | None:
    """Why ``value`` is not acceptable text (``free``: it is free text), or None."""
    if value.isprintable():  # the common case, in C: no control character, no surrogate
        return None
    return _describe((_FREE if free else _STRICT).search(value))


def unicode_problem(value: str) -> str | None:
    """Why UTF-8 cannot carry ``value`` (a lone surrogate), or None: the part of
    :func:`text_problem` that no store and no response can live with."""
    if value.isascii():
        return None
    return _describe(_SURROGATE.search(value))


def _describe(bad: re.Match[str] | None) -> str | None:
    if bad is None:
        return None
    char = bad.group()
    what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {what} (U+{ord(char):04X})"


def shown(name: str, limit: int = 64) -> str:
    """``name`` as it can appear in a message: itself when short and printable, else
    its escaped ``repr`` (a message must never carry what it complains about)."""
    if 0 < len(name) <= limit and name.isprintable():
        return name
    return repr(name[:limit])


def quoted(value: object, limit: int = 64) -> str:
    """A value a caller sent, quoted and escaped for a message, cut to ``limit``."""
    return repr(value[:limit] if isinstance(value, str) else value)
