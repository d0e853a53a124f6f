"""What an authenticated caller may do: the scope check the router runs before every request.

Entra's credentials (``provisioning``) keep full provisioning rights on every route (the app's
extension is protected further down, in :mod:`scim_core.app_extension`). The app's credentials
may do what their scopes allow (docs/app-guide.md):

============  ================================================================================
scope         allows
============  ================================================================================
``read``      GET on every route, POST on ``/.search``, ``/Users/.search``, ``/Groups/.search``
``app:write`` PATCH and PUT of ``/Users/{id}`` that change only the app-owned extension
``events``    ``/Events`` (RFC 8936 poll) and ``/Events/keys`` (the SETs' signing key)
============  ================================================================================

Everything else an app credential asks for (POST/DELETE of resources, Bulk, Group writes) is
Entra's, and so is refused: 403 with a SCIM error (RFC 7644 §3.12 lists 403 as "the operation
is not permitted based on the supplied authorization"). No ``scimType`` fits (Table 9 has none
for authorization), so none is sent; ``detail`` names the scope that is missing. ``/Events``
needs ``events`` whoever asks, Entra included: its credential provisions, it does not consume.

The check reads nothing from storage: it decides on the method, the path and, for an
``app:write`` PATCH, the operation paths.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scim_core.errors import Forbidden
from scim_core.http import ScimRequest, parse_json
from scim_core.principal import APP_WRITE, EVENTS, READ, Principal
from scim_core.schema import APP_USER_SCHEMA

#: The event feed (RFC 8936 poll endpoint, scim_core/events/poll.py).
EVENTS_HEAD = "events"
_SEARCH = ".search"


def authorize(principal: Principal, req: ScimRequest) -> ScimRequest:
    """``req`` if ``principal`` may make it (marked ``app_write`` for an app:write request),
    else :class:`Forbidden`."""
    parts = [p.lower() for p in req.path.split("/") if p]
    if parts and parts[0] == EVENTS_HEAD:
        if EVENTS not in principal.scopes:
            raise Forbidden(
                "/Events needs a credential with the 'events' scope (an app credential; "
                "Microsoft Entra's provisioning credential has none)"
            )
        return req
    if not principal.is_app:
        return req
    if _is_read(req.method, parts):
        if READ not in principal.scopes:
            raise Forbidden(f"{_what(req)} needs the 'read' scope")
        return req
    is_user = len(parts) == 2 and parts[0] == "users" and parts[1] != _SEARCH
    if req.method in ("PATCH", "PUT") and is_user:
        if APP_WRITE not in principal.scopes:
            raise Forbidden(f"{_what(req)} needs the 'app:write' scope")
        if req.method == "PATCH":
            _check_patch_paths(parse_json(req))
        return replace(req, app_write=True)
    raise Forbidden(
        f"{_what(req)} is reserved for Microsoft Entra's provisioning credential; an app "
        f"credential may read (scope 'read') and change {APP_USER_SCHEMA} of a user "
        "(scope 'app:write')"
    )


def _is_read(method: str, parts: list[str]) -> bool:
    if method == "GET":
        return True
    # POST /.search, /Users/.search, /Groups/.search (RFC 7644 §3.4.3): a query in a body.
    return method == "POST" and bool(parts) and parts[-1] == _SEARCH and len(parts) <= 2


def _what(req: ScimRequest) -> str:
    return f"{req.method} {req.path}"


def _check_patch_paths(body: Any) -> None:
    """Refuse, before any read, a PATCH operation aimed outside the app's extension. The
    document check in :func:`scim_core.app_extension.settle` backs this up."""
    from scim_core.patch.message import operations

    urn = APP_USER_SCHEMA.lower()

    def inside(path: str) -> bool:
        low = path.strip().lower()
        return low == urn or low.startswith(urn + ":")

    for index, (_, path, value) in enumerate(operations(body)):
        if path is not None:
            if not inside(path):
                raise Forbidden(
                    f"Operations[{index}] targets {path!r:.80}; the app:write scope changes "
                    f"only {APP_USER_SCHEMA}"
                )
        elif not isinstance(value, dict) or not all(inside(k) for k in value):
            raise Forbidden(
                f"Operations[{index}] has no path, so its value must hold only "
                f"{APP_USER_SCHEMA} attributes (the app:write scope changes nothing else)"
            )


__all__ = ["authorize"]
