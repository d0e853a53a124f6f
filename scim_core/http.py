"""Plain request/response objects: the seam between a web host and the SCIM service.

``function_app`` adapts ``azure.functions.HttpRequest`` to :class:`ScimRequest` and renders
:class:`ScimResponse` back; scim_core never imports a web framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SCIM_CONTENT_TYPE = "application/scim+json"


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


@dataclass
class ScimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
