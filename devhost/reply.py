"""What the local host sends back: a status, headers and a body.

The host's own refusals (malformed HTTP, an admin call without its key, a stopping host) carry a
SCIM error body, so a client of the SCIM endpoint reads every error the same way, whichever layer
produced it: RFC 7644 section 3.12.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def scim_error(status: int, detail: str, headers: list[tuple[str, str]] | None = None) -> Reply:
    """A SCIM error response (RFC 7644 3.12): ``status`` as a string, a human ``detail``.

    ``detail`` is always the host's own text: echoing the client's bytes back would put whatever
    they sent (up to the size limits) into every error body.
    """
    body = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(status), "detail": detail}
    return Reply(
        status,
        [("Content-Type", SCIM_JSON), *(headers or [])],
        json.dumps(body).encode("utf-8"),
    )
