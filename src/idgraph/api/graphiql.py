"""The GraphiQL page, served from the package: no CDN, nothing from another origin.

The page (``GET /graphql`` from a browser, when ``ApiSettings.graphiql`` is on) and its
assets (``GET /graphiql/NAME``) need no key: they hold no data, and every query the page
sends needs a key and a purpose like any other. The assets are the vendored builds in
``static/graphiql`` (see its README and ``scripts/vendor-graphiql.sh``) and the page's
own ``start.js``, which keeps headers out of the browser's storage: a key pasted into
the Headers tab lives as long as the page (GraphiQL's ``shouldPersistHeaders`` is off,
and its query history, which would keep each query's headers anyway, writes through a
storage that drops them).

Every response carries a Content-Security-Policy that allows scripts, styles and
requests from the API's own origin only (styles may be inline: the editors set them;
images and fonts may be ``data:`` URLs, which the stylesheet embeds).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from idgraph.api.errors import http_error

ASSETS = Path(__file__).parent / "static" / "graphiql"
PAGE = "index.html"
PREFIX = "/graphiql"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
# What the page may load, by name (nothing else in the directory is served).
MEDIA_TYPES = {
    "react.production.min.js": JS,
    "react-dom.production.min.js": JS,
    "graphiql.min.js": JS,
    "graphiql.min.css": CSS,
    "start.js": JS,
    "page.css": CSS,
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSET_CACHE = "public, max-age=3600"


def page() -> Response:
    """The GraphiQL page (HTML)."""
    return FileResponse(
        ASSETS / PAGE,
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Cache-Control": "no-cache"},
    )


async def asset(request: Request) -> Response:
    """One of the page's scripts or stylesheets."""
    name = request.path_params["name"]
    media_type = MEDIA_TYPES.get(name)
    if media_type is None:
        return http_error(404, "no such GraphiQL asset")
    return FileResponse(
        ASSETS / name, media_type=media_type, headers={**HEADERS, "Cache-Control": ASSET_CACHE}
    )


def routes() -> list[Route]:
    return [Route(PREFIX + "/{name}", asset, methods=["GET", "HEAD"])]
