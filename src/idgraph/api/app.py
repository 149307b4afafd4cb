"""The composition root: settings → store → service → Starlette application.

``create_app`` builds everything per application (no module-level state): the store is
opened in Starlette's lifespan (unless one is handed in, which the caller then owns) and
reaches resolvers through the Strawberry context.

Every request but ``/healthz`` and ``/readyz`` needs an API key (see
:mod:`idgraph.api.access`); ``/metrics`` needs the ``operate`` permission. The GraphiQL
page is served only when ``ApiSettings.graphiql`` is on, and then without a key: it
holds no data, and every query it sends needs a key and a purpose like any other.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from idgraph.api.access import authenticate
from idgraph.api.context import Context
from idgraph.api.errors import format_error, http_error
from idgraph.api.metrics import Metrics
from idgraph.api.schema import build_schema
from idgraph.api.tokens import Tokens
from idgraph.config import Settings, load_settings
from idgraph.domain.access import Permission
from idgraph.errors import StoreError
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from idgraph.store.factory import open_store
from idgraph.store.port import Store

ROUTES = ("/graphql", "/healthz", "/readyz", "/metrics")


def wants_graphiql(request: Request) -> bool:
    """A browser asking for the page (Strawberry's own test)."""
    accept = request.headers.get("accept", "")
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and ("text/html" in accept or "*/*" in accept)
    )


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with idgraph's authentication, context, error format and
    HTTP errors."""

    def __init__(self, schema: Any, metrics: Metrics, graphiql: bool, tokens: Tokens) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self.metrics = metrics
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if self.graphql_ide and wants_graphiql(request):
                response = await self.render_graphql_ide(request)
            else:
                request.state.key = await authenticate(request, request.app.state.keyring)
                response = await self.run(request)
        except HTTPException as exc:
            response = http_error(exc.status_code, exc.reason)
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            graph=request.app.state.graph,
            metrics=self.metrics,
            key=request.state.key,
            purpose_name=request.headers.get("x-purpose", "").strip(),
            tokens=self.tokens,
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(e, self.metrics) for e in result.errors]
        return response


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with HTTP 413, before anything parses
    them (declared by Content-Length or streamed in chunks)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit():
            await http_error(400, "invalid Content-Length header")(scope, receive, send)
            return
        if int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = http_error(413, f"request body over {self.max_bytes:,} bytes")
        await response(scope, receive, send)


class RequestMetrics:
    """Counts requests and their latency per known path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.requests.inc(path, scope["method"], str(status))
            self.metrics.latency.observe(time.perf_counter() - start, path)


async def healthz(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The store answers."""
    try:
        await request.app.state.graph.store.ping()
    except StoreError:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(settings: Settings, store: Store | None = None) -> Starlette:
    """The API application. With ``store``, it serves that (open) store and leaves it
    open; otherwise it opens ``settings.store`` at startup and closes it at shutdown."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(settings)
        app.state.graph = IdentityGraph(opened, settings)
        app.state.keyring = KeyRing(opened, settings)
        try:
            yield
        finally:
            if store is None:
                await opened.close()

    async def metrics_endpoint(request: Request) -> Response:
        """Needs a key with the ``operate`` permission (no purpose: it holds no personal
        data)."""
        try:
            key = await authenticate(request, request.app.state.keyring)
        except HTTPException as exc:
            return http_error(exc.status_code, exc.reason)
        if not key.may(Permission.OPERATE):
            return http_error(403, f"the role {key.role.value!r} has no 'operate' permission")
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return Starlette(
        routes=[
            Route(
                "/graphql",
                GraphQLView(
                    build_schema(settings.api),
                    metrics,
                    settings.api.graphiql,
                    Tokens.from_secret(settings.secret()),
                ),
            ),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        middleware=[
            Middleware(RequestMetrics, metrics=metrics),
            Middleware(BodyLimit, max_bytes=settings.api.max_body_bytes),
        ],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """An app from ``IDGRAPH_*`` variables and ``idgraph.toml``: the factory uvicorn's
    worker processes call (``idgraph.api.app:app_from_env``, ``factory=True``)."""
    return create_app(load_settings())
