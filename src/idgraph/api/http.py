"""GraphQL over HTTP: which media type a response has, and what a refused request looks like.

A client that accepts ``application/graphql-response+json`` (the GraphQL-over-HTTP
specification's own media type) gets it; everyone else gets ``application/json``, as
before. The difference is the status code of a *request error*, a request refused before
anything ran: a document that does not parse or validate, is over a limit of
:mod:`idgraph.api.limits`, or whose variables do not coerce. With
``application/graphql-response+json`` it is HTTP 400; with ``application/json`` it stays
200, so existing clients read the errors as they always did. Either way the response has
no ``data`` entry at all, which tells a client nothing ran; ``"data": null`` means that
execution started and failed (a timeout, a non-null field that failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from idgraph.api.errors import BAD_USER_INPUT, PARSE_FAILED, VALIDATION_FAILED
from idgraph.api.limits import TOO_COMPLEX

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"

# Codes of errors raised before execution: parse, validation, limits, variable coercion.
REQUEST_ERROR_CODES = frozenset({PARSE_FAILED, VALIDATION_FAILED, TOO_COMPLEX, BAD_USER_INPUT})


def response_media_type(accept: str) -> str:
    """``application/graphql-response+json`` when the ``Accept`` header names it with at
    least the quality of ``application/json`` (missing, ``*/*`` or anything else: JSON)."""
    qualities = _qualities(accept)
    wanted = qualities.get(GRAPHQL_RESPONSE, 0.0)
    if wanted > 0 and wanted >= qualities.get(JSON, 0.0):
        return GRAPHQL_RESPONSE
    return JSON


def _qualities(accept: str) -> dict[str, float]:
    """Media type → quality (``q``) for each entry of an ``Accept`` header."""
    qualities: dict[str, float] = {}
    for entry in accept.split(","):
        media_type, *parameters = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[media_type.lower()] = max(quality, qualities.get(media_type.lower(), 0.0))
    return qualities


def is_request_error(data: object, errors: Sequence[Mapping[str, Any]]) -> bool:
    """Whether formatted ``errors`` (with no ``data``) refused the request before it
    ran. Errors of execution carry a ``path``; those raised before it do not."""
    return (
        data is None
        and bool(errors)
        and all(
            "path" not in error and error["extensions"]["code"] in REQUEST_ERROR_CODES
            for error in errors
        )
    )


def negotiate(response: Response, accept: str, request_error: bool) -> None:
    """Give ``response`` (a GraphQL result or an HTTP error, both JSON) the media type
    ``accept`` asks for, and HTTP 400 for a request error under
    ``application/graphql-response+json``."""
    if response_media_type(accept) != GRAPHQL_RESPONSE:
        return
    response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
    if request_error:
        response.status_code = 400
