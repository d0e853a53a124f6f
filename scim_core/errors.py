"""The SCIM error hierarchy (RFC 7644 §3.12).

Every failure the protocol core reports is a ``ScimError`` carrying its HTTP status, its
``scimType`` (where RFC 7644 Table 9 defines one) and a human ``detail``. The HTTP edge renders
it with :meth:`ScimError.to_body`; anything that is not a ``ScimError`` is a bug and becomes a
generic 500 without internals.

    ScimError
    ├── BadRequest (400)
    │   ├── InvalidFilter      scimType invalidFilter   (§3.4.2.2)
    │   ├── TooMany            scimType tooMany         (§3.4.2.2)
    │   ├── InvalidSyntax      scimType invalidSyntax   (§3.12)
    │   ├── InvalidPath        scimType invalidPath     (§3.5.2)
    │   ├── NoTarget           scimType noTarget        (§3.5.2)
    │   ├── InvalidValue       scimType invalidValue    (§3.12)
    │   ├── Mutability         scimType mutability      (§3.5.2)
    │   ├── InvalidVersion     scimType invalidVers     (§3.12)
    │   ├── Sensitive          scimType sensitive       (§7.5.2)
    │   ├── InvalidCursor      scimType invalidCursor   (RFC 9865 §2, pagination errors)
    │   └── ExpiredCursor      scimType expiredCursor   (RFC 9865 §2, pagination errors)
    ├── Unauthorized (401)
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── Conflict (409)       scimType uniqueness       (§3.3)
    ├── PreconditionFailed (412)                       (§3.14)
    ├── PayloadTooLarge (413)                          (§3.7.4)
    ├── UnsupportedMediaType (415)
    ├── TooManyRequests (429)   with Retry-After
    ├── NotImplemented_ (501)
    └── ServiceUnavailable (503) with Retry-After
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base class: an error the client is told about as a SCIM Error message."""

    status: int = 500
    scim_type: str | None = None

    def __init__(
        self, detail: str, *, scim_type: str | None = None, retry_after: int | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        if scim_type is not None:
            self.scim_type = scim_type
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="scim"'
        return headers


class BadRequest(ScimError):
    status = 400


class InvalidFilter(BadRequest):
    scim_type = "invalidFilter"


class TooMany(BadRequest):
    scim_type = "tooMany"


class InvalidCursor(BadRequest):
    """A cursor this service did not issue, or issued for another query (RFC 9865)."""

    scim_type = "invalidCursor"


class ExpiredCursor(BadRequest):
    """A cursor older than the announced ``cursorTimeout`` (RFC 9865)."""

    scim_type = "expiredCursor"


class InvalidSyntax(BadRequest):
    scim_type = "invalidSyntax"


class InvalidPath(BadRequest):
    scim_type = "invalidPath"


class NoTarget(BadRequest):
    scim_type = "noTarget"


class InvalidValue(BadRequest):
    scim_type = "invalidValue"


class Mutability(BadRequest):
    scim_type = "mutability"


class InvalidVersion(BadRequest):
    scim_type = "invalidVers"


class Sensitive(BadRequest):
    scim_type = "sensitive"


class Unauthorized(ScimError):
    status = 401


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class Conflict(ScimError):
    status = 409
    scim_type = "uniqueness"


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class TooManyRequests(ScimError):
    status = 429


class NotImplemented_(ScimError):  # noqa: N801 - avoid shadowing the builtin constant
    status = 501


class ServiceUnavailable(ScimError):
    status = 503
