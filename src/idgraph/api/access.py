"""Who is calling, and what each field lets them do.

Every request but ``/healthz`` and ``/readyz`` carries ``Authorization: Bearer <key>``
(else HTTP 401). GraphQL fields then check, one by one, that the key's role has the
permission the field needs and that the key may use the request's purpose
(``X-Purpose``); a field that fails answers null with a ``FORBIDDEN`` error while the
others still answer. Roles and permissions are :mod:`idgraph.domain.access`'s.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

from idgraph.domain.access import ApiKey, Permission
from idgraph.domain.consent import Purpose
from idgraph.errors import Forbidden
from idgraph.keys import KeyRing

BEARER = "bearer "


async def authenticate(request: Request, keyring: KeyRing) -> ApiKey:
    """The live key of a request; HTTP 401 without one. Messages never quote the key."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith(BEARER) or not header[len(BEARER) :].strip():
        raise HTTPException(401, "an API key is required: send Authorization: Bearer <key>")
    key = await keyring.authenticate(header[len(BEARER) :].strip())
    if key is None:
        raise HTTPException(401, "the API key is unknown or revoked")
    return key


def check(key: ApiKey, purpose: Purpose | None, permission: Permission) -> None:
    """Raise :class:`Forbidden` unless ``key`` may use ``permission`` for ``purpose``
    (None: the request's ``X-Purpose`` is missing or names no configured purpose)."""
    if purpose is None:
        raise Forbidden("send an X-Purpose header naming a configured purpose")
    if not key.may_use(purpose.name):
        raise Forbidden(f"this key may not be used for the purpose {purpose.name!r}")
    if not key.may(permission):
        raise Forbidden(f"the role {key.role.value!r} has no {permission.value!r} permission")


class Requires(BasePermission):
    """A field's permission check (see :func:`needs`)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        context = info.context
        check(context.key, context.purpose, self.permission)
        return True


def needs(permission: Permission) -> list[FieldExtension]:
    """The ``extensions`` of a field that needs ``permission`` and a usable purpose."""
    return [PermissionExtension(permissions=[Requires(permission)], use_directives=False)]
