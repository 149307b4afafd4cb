"""The composition root: settings → store → service → Starlette application.

``create_app`` builds everything per application (no module-level state): the store is
opened in Starlette's lifespan (unless one is handed in, which the caller then owns) and
reaches resolvers through the Strawberry context. With ``[retention] schedule`` set, the
lifespan also runs purges in the background (:func:`idgraph.retention.scheduled`).

Every request but ``/healthz`` and ``/readyz`` needs an API key (see
:mod:`idgraph.api.access`; failed attempts are throttled per client address, see
:mod:`idgraph.api.throttle`); ``/metrics`` and the health report ``/ui/health``
(:mod:`idgraph.api.health_page`) need the ``operate`` permission.

What a request may cost is bounded at every step: its body (:class:`BodyLimit`), the JSON
in it (:func:`load_json`), the query (:mod:`idgraph.api.limits`: tokens, depth, aliases,
cost, a timeout) and the response (``ApiSettings.max_response_bytes``). Whatever goes
wrong answers with a JSON body and the connection stays usable.

The GraphiQL page (:mod:`idgraph.api.graphiql`) is served only when ``ApiSettings.graphiql`` is
on, and then without a key: it holds no data, and every query it sends needs a key and a
purpose like any other.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from idgraph import retention
from idgraph.api import graphiql
from idgraph.api.access import authenticate, refuse_unless_operator
from idgraph.api.audit import AuditWriter
from idgraph.api.context import Context
from idgraph.api.cors import cors
from idgraph.api.errors import (
    INTERNAL_MESSAGE,
    format_error,
    http_error,
    http_exception,
    log_unexpected,
)
from idgraph.api.health_page import HealthPage
from idgraph.api.http import is_request_error, negotiate
from idgraph.api.limits import LimitExceeded
from idgraph.api.metrics import CONTENT_TYPE, ROUTES, Metrics
from idgraph.api.schema import build_schema
from idgraph.api.throttle import AuthThrottle
from idgraph.api.tokens import Tokens
from idgraph.config import ApiSettings, Settings, load_settings
from idgraph.domain.events import json_int
from idgraph.errors import StoreError
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from idgraph.store.factory import open_store
from idgraph.store.port import Store

# Python frames below the JSON parser's own (the server's stack at that point).
RECURSION_HEADROOM = 200
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"


def wants_graphiql(request: Request) -> bool:
    """A browser asking for the page (Strawberry's own test)."""
    accept = request.headers.get("accept", "")
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and ("text/html" in accept or "*/*" in accept)
    )


def load_json(data: str | bytes, max_depth: int) -> object:
    """A JSON object or array, as GraphQL over HTTP sends; HTTP 400 for anything else:
    invalid JSON or UTF-8, or nesting deeper than ``max_depth`` (checked without
    recursion; the parser's own recursion may go that deep, so an event nested a
    thousand levels is refused per event, not with the whole body). ``NaN``,
    ``Infinity``, integers too long for 64 bits (see :func:`json_int`) and lone
    surrogate escapes pass: inside an event the event parser refuses them per event,
    elsewhere GraphQL's coercion or :mod:`idgraph.api.variables` does."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, max_depth + RECURSION_HEADROOM))
    try:
        value = json.loads(data, parse_int=json_int)
    except RecursionError:
        raise HTTPException(400, "JSON nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise HTTPException(400, "Unable to parse request body as JSON") from None
    finally:
        sys.setrecursionlimit(limit)
    if not isinstance(value, dict | list):
        raise HTTPException(400, 'the JSON must be an object, e.g. {"query": "{ __typename }"}')
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise HTTPException(400, f"JSON nested over {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


POST_OPERATIONS = frozenset(OperationType.from_http("POST"))
REQUEST_KEYS = ("query", "variables", "operationName", "extensions")
STREAM_MEDIA_TYPES = ("multipart/mixed", "text/event-stream")  # Strawberry's transports


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with idgraph's authentication, context, error format, HTTP
    errors and limits on the JSON it reads and writes."""

    def __init__(
        self, schema: Any, metrics: Metrics, settings: ApiSettings, tokens: Tokens
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if settings.graphiql else None)
        self.metrics = metrics
        self.settings = settings
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self.graphql_ide and wants_graphiql(request):
            await (await self.render_graphql_ide(request))(scope, receive, send)
            return
        request.state.request_error = False
        try:
            state = request.app.state
            request.state.key = await authenticate(request, state.keyring, state.throttle)
            response = await self.run(request)
        except HTTPException as exc:
            response = http_exception(exc)
        except Exception as exc:  # a bug: answer, keep the connection, log no data
            log_unexpected(exc)
            response = http_error(500, INTERNAL_MESSAGE)
        negotiate(response, request.headers.get("accept", ""), request.state.request_error)
        await response(scope, receive, send)

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """A POST of one operation in JSON (what API clients send) goes the short way:
        Strawberry's ``run`` also serves GET, forms, batches, streams and websockets,
        and deciding among them was ~3% of a ``resolve``'s function calls. Anything else,
        and any body the short way would refuse, goes Strawberry's way."""
        operation = await self._plain_operation(request)
        if operation is None:
            return await super().run(request, context, root_value)
        try:
            result = await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=await self.get_context(request, None),
                operation_name=operation.operation_name,
                allowed_operation_types=POST_OPERATIONS,
                operation_extensions=operation.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason("POST")) from exc
        body = self.encode_json(await self.process_result(request, result))
        return Response(body, media_type="application/json")

    async def _plain_operation(self, request: Request) -> GraphQLRequestData | None:
        """The operation of a POST of one operation in JSON that asks for no stream;
        None for any other request."""
        accept = request.headers.get("accept", "")
        if (
            request.method != "POST"
            or not request.headers.get("content-type", "").startswith("application/json")
            or any(stream in accept for stream in STREAM_MEDIA_TYPES)
        ):
            return None
        data = self.decode_json(await request.body())
        if not isinstance(data, dict):
            return None
        query, variables, name, extensions = (data.get(k) for k in REQUEST_KEYS)
        if (
            isinstance(query, str)
            and query
            and isinstance(variables, dict | None)
            and isinstance(name, str | None)
            and isinstance(extensions, dict | None)
        ):
            return GraphQLRequestData(query, variables, name, extensions)
        return None

    async def render_graphql_ide(self, request: Any) -> Response:
        return graphiql.page()

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            graph=request.app.state.graph,
            metrics=self.metrics,
            key=request.state.key,
            purpose_name=request.headers.get("x-purpose", "").strip(),
            tokens=self.tokens,
            audit_writer=request.app.state.audit_writer,
        )

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The result, with no ``data`` entry when a request error refused it (see
        :mod:`idgraph.api.http`), and its ``extensions`` when it has any."""
        errors: list[Any] = [format_error(e, self.metrics) for e in result.errors or ()]
        response: GraphQLHTTPResponse = {}
        if is_request_error(result.data, errors):
            request.state.request_error = True
        else:
            response["data"] = result.data
        if errors:
            response["errors"] = errors
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def decode_json(self, data: str | bytes) -> object:
        return load_json(data, self.settings.max_json_depth)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData:
        """Strawberry's checks, and ``operationName`` must be a string too."""
        data = await super().parse_http_body(request)
        assert isinstance(data, GraphQLRequestData)  # batches are off: refused above
        if not isinstance(data.operation_name, str | None):
            raise HTTPException(400, "The GraphQL operation's `operationName` must be a string")
        return data

    def encode_json(self, data: object) -> str:
        """The response, or an error in its place when it is over the size limit."""
        encoded = dump_json(data)
        limit = self.settings.max_response_bytes
        if len(encoded) <= limit:
            return encoded.decode()
        error = LimitExceeded(
            f"the response is over the limit of {limit:,} bytes: ask for less",
            RESPONSE_TOO_LARGE,
        )
        return dump_json({"data": None, "errors": [format_error(error, self.metrics)]}).decode()


JSON_ENCODER = msgspec.json.Encoder()


def dump_json(data: object) -> bytes:
    """``data`` as compact UTF-8 JSON. msgspec writes a resolve's response several times
    faster than ``json.dumps``; text with a lone surrogate (which an error may quote
    from a request) has no UTF-8 form, so ``json`` writes that as an escape."""
    try:
        return JSON_ENCODER.encode(data)
    except UnicodeEncodeError:
        return json.dumps(data, separators=(",", ":")).encode()


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
            self.metrics.request(path, scope["method"], status, time.perf_counter() - start)


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
        app.state.throttle = AuthThrottle(settings.api.auth_failures, settings.api.auth_window)
        app.state.audit_writer = writer = AuditWriter(opened, linger=settings.api.audit_linger)
        writer.start()
        try:
            async with retention.scheduled(opened, settings.retention):
                yield
        finally:
            try:
                await writer.close()
            finally:
                metrics.close()
                if store is None:
                    await opened.close()

    async def metrics_endpoint(request: Request) -> Response:
        """Needs a key with the ``operate`` permission (no purpose: it holds no personal
        data)."""
        if (refusal := await refuse_unless_operator(request)) is not None:
            return refusal
        try:
            counts = await request.app.state.graph.store.counts()
        except StoreError:
            counts = None
        metrics.record_store(counts)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    tokens = Tokens.from_secret(settings.secret())
    return Starlette(
        routes=[
            Route(
                "/graphql",
                GraphQLView(
                    build_schema(settings.api, settings.rules.max_size),
                    metrics,
                    settings.api,
                    tokens,
                ),
            ),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            *HealthPage(tokens).routes(),
            *(graphiql.routes() if settings.api.graphiql else []),
        ],
        middleware=[
            Middleware(RequestMetrics, metrics=metrics),
            *cors(settings.api.cors_origins),
            Middleware(BodyLimit, max_bytes=settings.api.max_body_bytes),
        ],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """An app from ``IDGRAPH_*`` variables and ``idgraph.toml``: the factory uvicorn's
    worker processes call (``idgraph.api.app:app_from_env``, ``factory=True``)."""
    app = create_app(load_settings())
    serving_gc()
    return app


YOUNG_COLLECTION_ALLOCATIONS = 20_000  # Python's default: 700


def serving_gc() -> None:
    """The garbage collector's policy in a process that serves the API, once its app is
    built (whether by ``app_from_env`` or by ``idgraph serve`` in one process).

    What is built by then (modules, the schema, the store) lives as long as the process:
    it is moved out of the collector's reach (``gc.freeze``), so full collections walk
    only what requests allocate. And the youngest generation is collected after 20,000
    allocations not yet freed instead of 700: a request frees nearly all it allocates by
    reference counting (tests/api/test_reference_cycles.py keeps it so), yet at 700 about
    one ``resolve`` in 60 ran a collection, walking the live objects of the requests in
    flight (0.4 ms on average, up to 0.9): the p99 region. Measured at 200 ``resolve``/s
    on two cores: the server's p99 3.3 ms instead of 3.9 (medians of eight runs each).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])
