"""``GET /status``: an instance's health for its operator, in O(1) storage reads.

Authenticated like every SCIM request (the instance's bearer token(s) or JWT), outside the SCIM
base so SCIM clients and compliance suites never meet an undeclared resource. The document:

- ``scim``: the last request from an authenticated client (Entra) and the last 24 hours'
  requests and errors by status code (:mod:`scim_core.activity`: one point read);
- further sections the caller adds (function_app adds ``graphSync`` and ``users`` from the Graph
  sync's state records: two point reads).

No section scans anything: no listing of users or groups, however large the instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from scim_core.activity import Activity
from scim_core.auth import Authenticator
from scim_core.errors import Forbidden, ScimError
from scim_core.http import ScimRequest, ScimResponse, allow, error_response, json_response

#: Bumped when a field changes meaning; `python -m infra.deploy status` reads it.
SCHEMA_VERSION = 1


def status_response(
    req: ScimRequest,
    auth: Authenticator | None,
    activity: Activity,
    sections: Callable[[datetime], Mapping[str, Any]],
) -> ScimResponse:
    try:
        if auth is not None:
            principal = auth.authenticate(req.headers.get("authorization"))
            if principal.is_app:
                # The line-of-business app's credential reads users, not the operator's view
                # of the instance (scim_core/access.py: an app does what its scopes allow).
                raise Forbidden("/status is the operator's; an app credential has no access")
        allow(req, "GET")
        now = datetime.now(UTC)
        document: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "scim": activity.snapshot(),
            **sections(now),
        }
    except ScimError as err:
        return error_response(err)
    response = json_response(200, document, {"Cache-Control": "no-store"})
    response.headers["Content-Type"] = "application/json"
    return response
