"""Who is calling, and what each field lets them do.

Every request but ``/healthz`` and ``/readyz`` carries ``Authorization: Bearer <key>``
(else HTTP 401; repeated 401s from one client address lead to HTTP 429, see
:mod:`idgraph.api.throttle`). GraphQL fields then check, one by one, that the key's role
has the permission the field needs and that the key may use the request's purpose
(``X-Purpose``); a field that fails raises a ``FORBIDDEN`` error at its path, and null
takes the place of the nearest nullable field around it (GraphQL's null propagation: the
field itself, or, for a non-null field such as ``Customer.size``, the ``Customer``),
while the rest of the response still answers. Roles and permissions are
:mod:`idgraph.domain.access`'s.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import FieldExtension
from strawberry.extensions.field_extension import SyncExtensionResolver
from strawberry.types import Info

from idgraph.api.errors import http_error, http_exception
from idgraph.api.throttle import AuthThrottle
from idgraph.domain.access import ApiKey, Permission
from idgraph.domain.consent import Purpose
from idgraph.errors import Forbidden
from idgraph.keys import KeyRing

BEARER = "bearer "


class Throttled(HTTPException):
    """HTTP 429: too many failed authentications from the client's address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"too many failed authentications; retry in {retry_after} s")
        self.headers = {"Retry-After": str(retry_after)}


async def authenticate(request: Request, keyring: KeyRing, throttle: AuthThrottle) -> ApiKey:
    """The live key of a request; HTTP 401 without one, HTTP 429 while the client's
    address is throttled. Messages never quote the key."""
    client = request.client.host if request.client else ""
    wait = throttle.retry_after(client)
    if wait is not None:
        raise Throttled(wait)
    header = request.headers.get("authorization", "")
    secret = header[len(BEARER) :].strip() if header.lower().startswith(BEARER) else ""
    key = await keyring.authenticate(secret) if secret else None
    if key is None:
        throttle.failed(client)
        if not secret:
            raise HTTPException(401, "an API key is required: send Authorization: Bearer <key>")
        raise HTTPException(401, "the API key is unknown or revoked")
    return key


async def refuse_unless_operator(request: Request) -> Response | None:
    """The HTTP answer refusing a request to an operator page (``/metrics``,
    ``/ui/health``: no purpose, as they hold no personal data) without a live key whose
    role has the ``operate`` permission; None when the request may go on."""
    state = request.app.state
    try:
        key = await authenticate(request, state.keyring, state.throttle)
    except HTTPException as exc:
        return http_exception(exc)
    if not key.may(Permission.OPERATE):
        return http_error(403, f"the role {key.role.value!r} has no 'operate' permission")
    return None


def check(key: ApiKey, purpose: Purpose | None, permission: Permission) -> None:
    """Raise :class:`Forbidden` unless ``key`` may use ``permission`` for ``purpose``
    (None: the request's ``X-Purpose`` is missing or names no configured purpose)."""
    if purpose is None:
        raise Forbidden("send an X-Purpose header naming a configured purpose")
    if not key.may_use(purpose.name):
        raise Forbidden(f"this key may not be used for the purpose {purpose.name!r}")
    if not key.may(permission):
        raise Forbidden(f"the role {key.role.value!r} has no {permission.value!r} permission")


class Needs(FieldExtension):
    """A field's permission check (see :func:`needs`): one call, no coroutine of its own
    (the request's context remembers what it granted, see ``Context.check``)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def check(self, context: Any) -> None:
        """Raise ``Forbidden`` unless the request's key and purpose allow the field."""
        context.check(self.permission)

    def resolve(self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        self.check(info.context)
        return next_(source, info, **kwargs)

    # The resolver's awaitable is handed back as it is, for Strawberry to await.
    resolve_async = resolve


def needs(permission: Permission) -> list[FieldExtension]:
    """The ``extensions`` of a field that needs ``permission`` and a usable purpose."""
    return [Needs(permission)]
