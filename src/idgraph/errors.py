"""The idgraph error tree. Every error idgraph raises on purpose is one of these.

    IdgraphError
    ├── ConfigError            bad settings or idgraph.toml
    ├── InvalidInput           a caller's input is wrong; safe to show to the caller
    │   ├── EventError         one event is invalid (which field, why)
    │   ├── IdentifierError    an identifier does not normalize (bad email, phone, kind)
    │   ├── FilterError        a segment filter is invalid (where in it, why)
    │   └── Erased             the subject was erased (``forget``): refused for good
    ├── NotFound               no such identity node or customer
    ├── Forbidden              the caller's key may not do this (its role or purpose)
    ├── RuleViolation          a steward action that the resolution rules refuse
    ├── StoreError             the storage backend failed
    │   └── StoreUnavailable   cannot reach / open the store
    └── WorkerFailed           a second process of a bulk ingest stopped or failed

Adapters translate driver errors into StoreError subclasses with ``raise … from exc``;
only the API layer and the CLI turn these into user-facing messages.
"""

from __future__ import annotations

import re

# One step of an EventError's field: ``[2]``, a name, or a name shown quoted (``'a.b'``).
_STEP = re.compile(r"""\[(\d+)\]|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^.\[\]'"]+)""")


class IdgraphError(Exception):
    """Base class of every error idgraph raises on purpose."""

    code = "INTERNAL"


class ConfigError(IdgraphError):
    code = "BAD_CONFIG"


class InvalidInput(IdgraphError):
    code = "BAD_USER_INPUT"


class IdentifierError(InvalidInput):
    """An identifier that cannot be normalized. ``field`` names where it came from."""

    def __init__(self, reason: str, field: str = "") -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {reason}" if field else reason)


class EventError(InvalidInput):
    """One event is invalid. ``field`` is a path such as ``identifiers[1].value``."""

    def __init__(self, field: str, reason: str, event_id: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.event_id = event_id
        where = f"event {event_id!r}: " if event_id else ""
        super().__init__(f"{where}{field}: {reason}" if field else f"{where}{reason}")

    @property
    def path(self) -> tuple[str, ...]:
        """``field`` as steps: ``identifiers[1].value`` is ``("identifiers", "1", "value")``.
        A name the message had to quote stays as it was shown (escaped)."""
        return tuple(
            next(s for s in m.groups() if s is not None) for m in _STEP.finditer(self.field)
        )


class FilterError(InvalidInput):
    """A segment filter is invalid. ``path`` names the place inside it, such as
    ``filter.all[2].interactions.atLeast``; the message never quotes a value."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class Erased(InvalidInput):
    """The input names an erased identifier: it is refused for good."""

    code = "ERASED"


class NotFound(IdgraphError):
    code = "NOT_FOUND"


class Forbidden(IdgraphError):
    code = "FORBIDDEN"


class RuleViolation(IdgraphError):
    code = "RULE_VIOLATION"


class StoreError(IdgraphError):
    code = "STORE_ERROR"


class StoreUnavailable(StoreError):
    code = "STORE_UNAVAILABLE"


class WorkerFailed(IdgraphError):
    """The process checking an ingest's lines stopped or failed; no batch is half
    written, and a run started again goes on where this one stopped."""
