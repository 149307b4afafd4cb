"""The one place where errors become what a client sees.

- GraphQL errors: every error in a response gets a stable ``extensions.code``:

  ==========================  =========================================================
  GRAPHQL_PARSE_FAILED        the query is not valid GraphQL syntax, or too many tokens
  GRAPHQL_VALIDATION_FAILED   unknown fields, wrong argument types, too deep, too many
                              aliases (checked before anything runs)
  QUERY_TOO_COMPLEX,          limits of :mod:`idgraph.api.limits`: the query costs too
  TIMEOUT,                    much, ran too long, or its response is too large
  RESPONSE_TOO_LARGE
  BAD_USER_INPUT              bad variables, invalid identifiers, cursors, page sizes
  FORBIDDEN                   the key's role lacks the field's permission, or the key
                              may not use the request's purpose (the field is null)
  NOT_FOUND, RULE_VIOLATION   from :mod:`idgraph.errors`
  STORE_UNAVAILABLE           the store cannot answer: retry later
  STORE_ERROR                 the store failed the operation
  INTERNAL                    anything unexpected; the message is masked and the error
                              is logged (type and traceback, never the message, which
                              may hold personal data); a ConfigError (say, a keyring
                              re-wrapped by ``idgraph rotate-key`` under a server still
                              on the old key) is logged with its message, which never
                              holds personal data and tells the operator what to do
  ==========================  =========================================================

- User errors: mutations return caller mistakes as data (``userErrors``), not errors.
- HTTP errors (no or a bad API key, too many failed attempts, a body that is not a
  GraphQL request, wrong method, body too large) are JSON bodies in the same shape,
  with the HTTP status; a 401 says ``WWW-Authenticate: Bearer``, a 429 ``Retry-After``.
  Messages never quote the key.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Mapping
from enum import Enum
from typing import Any

import strawberry
from cross_web import HTTPException
from graphql import GraphQLError
from graphql.error import GraphQLSyntaxError
from starlette.responses import Response

from idgraph.api.metrics import Metrics
from idgraph.errors import (
    ConfigError,
    Forbidden,
    IdgraphError,
    InvalidInput,
    NotFound,
    RuleViolation,
    StoreError,
)

log = logging.getLogger("idgraph.api")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = InvalidInput.code
INTERNAL = "INTERNAL"
INTERNAL_MESSAGE = "Internal server error."

# Errors whose message is written for the caller (see idgraph.errors).
USER_ERRORS = (InvalidInput, NotFound, RuleViolation)
CALLER_ERRORS = (*USER_ERRORS, Forbidden)
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: Forbidden.code,
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
}


@strawberry.enum(description="Why a mutation refused its input.")
class UserErrorCode(Enum):
    BAD_USER_INPUT = strawberry.enum_value(
        "BAD_USER_INPUT", description="The input is invalid (see `field`, `message`)."
    )
    NOT_FOUND = strawberry.enum_value("NOT_FOUND", description="No such identifier or customer.")
    RULE_VIOLATION = strawberry.enum_value(
        "RULE_VIOLATION", description="The resolution rules refuse the action."
    )
    ERASED = strawberry.enum_value(
        "ERASED", description="The input names an erased identifier: refused for good."
    )


@strawberry.type(description="A mistake in a mutation's input, returned as data.")
class UserError:
    code: UserErrorCode = strawberry.field(description="Stable code.")
    message: str = strawberry.field(description="What is wrong, for a person.")
    field: str | None = strawberry.field(description="The argument at fault, e.g. `a`.")
    path: list[str] = strawberry.field(
        description='Where the fault is, from the argument down, e.g. `["subject"]`; '
        "empty when it is no one argument's."
    )


def user_error(exc: IdgraphError, field: str | None = None) -> UserError:
    """A user error from one of :data:`USER_ERRORS`."""
    return UserError(
        code=UserErrorCode(exc.code),
        message=str(exc),
        field=field,
        path=[] if field is None else [field],
    )


def tag_validation_errors(errors: list[GraphQLError] | None) -> None:
    """Code validation errors, which the response cannot tell from others."""
    for error in errors or ():
        _tag(error, VALIDATION_FAILED)


def tag_request_errors(result: object) -> None:
    """Code the errors of an executed operation that no field raised: request errors
    (bad variables), raised before any resolver."""
    for error in getattr(result, "errors", None) or ():
        if error.path is None:
            _tag(error, BAD_USER_INPUT)


def _tag(error: GraphQLError, code: str) -> None:
    """Give ``error`` a code unless it has one (limits tag their own)."""
    if "code" not in (error.extensions or {}):
        error.extensions = {**(error.extensions or {}), "code": code}


def classify(error: GraphQLError) -> tuple[str, str]:
    """The ``(code, message)`` a client sees for an error."""
    tagged = (error.extensions or {}).get("code")
    if tagged:
        return tagged, error.message
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED, error.message
    original = error.original_error
    if isinstance(original, CALLER_ERRORS):
        return original.code, str(original)
    if isinstance(original, StoreError):
        log_unexpected(original)
        return original.code, f"The store failed ({original.code}); try again later."
    if isinstance(original, ConfigError):
        # Its message names settings, files and stores (never a person's data) and what
        # the operator must do, e.g. restart with the key `idgraph rotate-key` made current.
        log.error("refused by the configuration: %s", original)
        return INTERNAL, INTERNAL_MESSAGE
    log_unexpected(original or error)
    return INTERNAL, INTERNAL_MESSAGE


def format_error(error: GraphQLError, metrics: Metrics) -> dict[str, Any]:
    code, message = classify(error)
    forget_tracebacks(error)
    metrics.error(code)
    formatted: dict[str, Any] = {"message": message}
    if error.locations is not None:
        formatted["locations"] = [{"line": p.line, "column": p.column} for p in error.locations]
    if error.path is not None:
        formatted["path"] = error.path
    formatted["extensions"] = {"code": code}
    return formatted


def forget_tracebacks(error: BaseException) -> None:
    """Drop the tracebacks of ``error`` and of the exceptions it wraps, once it is
    classified (and logged if unexpected). Their frames hold the executor, which holds
    the error: a reference cycle per failed field, and with it everything the request
    read, left for the cyclic garbage collector (see :mod:`idgraph.api.execution`)."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.__traceback__ = None
        pending += [exc.__cause__, exc.__context__, getattr(exc, "original_error", None)]


def log_unexpected(exc: BaseException) -> None:
    """Log an unexpected error as its type and stack (file, line, function), without its
    message or source lines: those may quote personal data."""
    frames = [
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    ]
    log.error("unexpected %s.%s\n%s", type(exc).__module__, type(exc).__name__, "\n".join(frames))


def http_exception(exc: HTTPException) -> Response:
    """The response for an HTTP error raised while handling a request; it may carry
    headers (``Retry-After``)."""
    return http_error(exc.status_code, exc.reason, getattr(exc, "headers", None))


def http_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An HTTP error in the shape of a GraphQL response. The body is ASCII JSON, so a
    message quoting what the client sent (even a lone surrogate) always encodes."""
    code = HTTP_CODES.get(status, INTERNAL)
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})},
        media_type="application/json",
    )
