"""Cross-origin access for browser frontends on other origins (CORS).

Off by default: no origin but the API's own may call it from a browser. With
``ApiSettings.cors_origins`` (``IDGRAPH_CORS_ORIGINS``, comma-separated, or
``cors_origins`` in the ``[api]`` table), Starlette's :class:`CORSMiddleware` answers
those origins' preflights itself, before authentication (a browser sends no
``Authorization`` header on a preflight), and marks their responses readable. Other
origins get no ``Access-Control-Allow-Origin``, so their browsers keep the responses
from them.

Keys travel in the ``Authorization`` header, never in cookies, so credentialed requests
are not allowed and ``"*"`` (any origin) is safe to configure for a public API.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

METHODS = ("GET", "POST")
# What a GraphQL client sends beyond the CORS-safelisted headers.
HEADERS = ("Authorization", "Content-Type", "X-Purpose")
MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


def cors(origins: tuple[str, ...]) -> list[Middleware]:
    """The middleware allowing ``origins`` (none when there are none)."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=HEADERS,
            max_age=MAX_AGE,
        )
    ]
