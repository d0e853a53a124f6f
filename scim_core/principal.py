"""Who made a request, and what it may do.

Two kinds of caller (docs/app-guide.md, DESIGN.md "The app's side"):

- **provisioning**: Microsoft Entra's provisioning service (its Secret Token, its OAuth JWT, or
  its own test-only JWT). Full provisioning rights on every route, except the app-owned
  extension (:mod:`scim_core.app_extension`) and ``/Events``.
- **app**: the line-of-business app, with its own credential (``SCIM_APP_TOKEN`` or an
  Entra-issued JWT of its own identity). It may do what its scopes allow, nothing else
  (:mod:`scim_core.access`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: GET and POST /.search on Users, Groups and the discovery endpoints.
READ = "read"
#: ``/Events`` (RFC 8936 poll; reserved until event delivery exists).
EVENTS = "events"
#: PATCH/PUT of the app-owned extension of a user, nothing else.
APP_WRITE = "app:write"
SCOPES = frozenset({READ, EVENTS, APP_WRITE})

_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. Never holds the token itself."""

    kind: Literal["token", "jwt"]
    subject: str
    """``static-token-1``/``-2`` (Entra), ``app-token-1``/``-2`` (the app); the ``sub`` claim of
    a JWT."""
    issuer: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    """``azp`` (v2) or ``appid`` (v1) claim: the calling application."""
    role: Literal["provisioning", "app"] = "provisioning"
    scopes: frozenset[str] = frozenset()
    """What an ``app`` principal may do (:data:`SCOPES`); empty for ``provisioning``."""

    @property
    def is_app(self) -> bool:
        return self.role == "app"


def parse_scopes(text: str | None) -> frozenset[str]:
    """``SCIM_APP_SCOPES``: scope names separated by commas or spaces. An unknown name is a
    ValueError (reported at start-up: a typo must not silently grant less, or more)."""
    names = {n for n in _SEPARATORS.split(text or "") if n}
    unknown = sorted(names - SCOPES)
    if unknown:
        raise ValueError(
            f"SCIM_APP_SCOPES: unknown scope(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(SCOPES))}"
        )
    return frozenset(names)


def scopes_of_roles(roles: object) -> frozenset[str]:
    """The scopes carried by a JWT's ``roles`` claim (Entra app roles whose values are the scope
    names). Roles this service does not know are ignored: the app registration may define
    others for other purposes."""
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, Iterable):
        return frozenset()
    return frozenset(r for r in roles if isinstance(r, str) and r in SCOPES)


__all__ = ["APP_WRITE", "EVENTS", "READ", "SCOPES", "Principal", "parse_scopes", "scopes_of_roles"]
