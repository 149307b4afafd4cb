"""``GET /ui/health``: the health report (:mod:`idgraph.report`) for a key with the
``operate`` permission.

Building the page reads every table and draws seven charts: about a second on a large
store. So it never runs on the event loop (the store reads whole tables off the loop, the
charts are drawn in a worker thread), at most one build runs at a time, and the page is
kept for :data:`CACHE_SECONDS`: a scraper polling it costs one build a minute however
often it asks. The cache lives in memory; the page holds no personal data.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from idgraph.api.access import refuse_unless_operator
from idgraph.api.errors import http_error
from idgraph.api.tokens import Tokens
from idgraph.errors import StoreError
from idgraph.report import build
from idgraph.store.port import Store

PATH = "/ui/health"
CACHE_SECONDS = 60.0
HEADERS = {
    # Nothing to load from anywhere, no script to run: the charts are inline SVG.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class HealthPage:
    """The endpoint and its cached page, one per application."""

    def __init__(self, tokens: Tokens, max_age: float = CACHE_SECONDS) -> None:
        self._tokens = tokens
        self._max_age = max_age
        self._lock = asyncio.Lock()
        self._page = ""
        self._built = -float("inf")  # time.monotonic() of the build

    async def endpoint(self, request: Request) -> Response:
        if (refusal := await refuse_unless_operator(request)) is not None:
            return refusal
        try:
            page = await self._current(request.app.state.graph.store)
        except StoreError:
            return http_error(503, "the store is unavailable; try again shortly")
        return HTMLResponse(page, headers=HEADERS)

    async def _current(self, store: Store) -> str:
        async with self._lock:  # requests arriving during a build wait for it
            if time.monotonic() - self._built > self._max_age:
                self._page = await build(store, self._tokens.node_id)
                self._built = time.monotonic()
            return self._page

    def routes(self) -> list[Route]:
        return [Route(PATH, self.endpoint, methods=["GET", "HEAD"])]
