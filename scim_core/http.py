"""Plain request/response objects: the seam between a web host and the SCIM service.

``function_app`` adapts ``azure.functions.HttpRequest`` to :class:`ScimRequest` and renders
:class:`ScimResponse` back; scim_core never imports a web framework.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scim_core.errors import (
    InvalidSyntax,
    MethodNotAllowed,
    PayloadTooLarge,
    ScimError,
    UnsupportedMediaType,
)
from scim_core.payload import decode

SCIM_CONTENT_TYPE = "application/scim+json"
#: Largest request body accepted (announced as bulk ``maxPayloadSize``). A stored document is
#: bounded by the 1 MiB Table entity limit anyway.
MAX_BODY = 1_048_576
_JSON_TYPES = ("application/scim+json", "application/json")


@dataclass(frozen=True)
class ScimRequest:
    method: str
    """Upper-case HTTP method."""
    path: str
    """Path below the SCIM base, starting with ``/``: ``/Users/123``."""
    base_url: str
    """Absolute SCIM base URL without trailing slash: ``https://host/scim/v2``."""
    query: Mapping[str, str] = field(default_factory=dict)
    """Decoded query parameters (last value wins)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers with lower-case names."""
    body: bytes = b""
    app_write: bool = False
    """Set by the router for the app's ``app:write`` credential: the request may change the
    app-owned extension and nothing else (scim_core/app_extension.py). False (Entra, and every
    request a host builds) leaves that extension untouched."""
    txn: str = ""
    """The request's transaction id for its events' ``txn`` claim (RFC 8417 §2.2); Bulk gives
    its operations one. Empty: the service makes one per change."""


@dataclass
class ScimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def parse_json(req: ScimRequest) -> Any:
    """The request body as JSON, or a SCIM 4xx (RFC 7644 §3.12)."""
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in _JSON_TYPES and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be {SCIM_CONTENT_TYPE}, got {ctype!r}")
    if len(req.body) > MAX_BODY:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY} bytes")
    if not req.body.strip():
        raise InvalidSyntax("the request body is empty")
    return decode(req.body)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> ScimResponse:
    out = {"Content-Type": SCIM_CONTENT_TYPE, **(headers or {})}
    try:
        data = json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be UTF-8 (RFC 3629 §3). Input refuses them (scim_core.payload),
        # but a record stored before that check must still render: as an ASCII-escaped JSON
        # text, which is valid JSON (RFC 8259 §7), rather than a 500 on every listing.
        data = json.dumps(body).encode()
    return ScimResponse(status, data, out)


def error_response(err: ScimError) -> ScimResponse:
    return json_response(err.status, err.to_body(), err.headers())


def allow(req: ScimRequest, *methods: str) -> None:
    """A SCIM 405 unless ``req`` uses one of ``methods``."""
    if req.method not in methods:
        raise MethodNotAllowed(f"{req.method} is not allowed here; use {', '.join(methods)}")
