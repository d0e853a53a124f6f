"""The fake Graph's ``POST /$batch`` and ``PATCH /users/{id}`` (tests/graph/fake_graph.py).

Wire format from Microsoft Learn:

- "Combine multiple HTTP requests using JSON batching" (https://learn.microsoft.com/graph/
  json-batching): ``{"requests": [{"id", "method", "url", "headers"?, "body"?}]}``, at most 20
  requests, ``id`` unique (case-insensitive), ``url`` relative to the version root ("/users/x"
  or "users/x"); ``Content-Type`` is required when a request has a body. The batch answers 200
  with ``{"responses": [{"id", "status", "headers", "body"}]}`` "in any order" (this fake
  answers in reverse, so a client relying on order fails). A malformed batch is a 400 for
  the whole batch. A request whose ``dependsOn`` failed answers 424.
- "Microsoft Graph throttling guidance": a throttled request inside a batch answers 429 with its
  own ``Retry-After`` while the others succeed. Scripted here with a ``Fault`` whose ``match``
  sees the inner request's method and path (``/v1.0/users/..``).
- "Update user" (https://learn.microsoft.com/graph/api/user-update): ``204 No Content``;
  errors in the standard error body. For a user synced from on-premises AD, "most properties
  are mastered on-premises": the update is refused with ``400 Request_BadRequest`` ("Unable
  to update the specified properties for on-premises mastered Directory Sync objects ...");
  ``onPremisesExtensionAttributes`` are writable for cloud-only users only.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.graph.fake_wire import Reply, error_reply

if TYPE_CHECKING:
    from tests.graph.fake_graph import FakeGraph

MAX_REQUESTS = 20
#: Properties "Update user" lists for an application (a subset is enough for the tests; the
#: fake refuses any other name, as Graph does with 400 for an unknown property).
UPDATABLE = frozenset(
    {
        "businessPhones",
        "city",
        "companyName",
        "country",
        "department",
        "displayName",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "employeeId",
        "employeeType",
        "faxNumber",
        "givenName",
        "jobTitle",
        "mailNickname",
        "mobilePhone",
        "officeLocation",
        "otherMails",
        "postalCode",
        "preferredLanguage",
        "state",
        "streetAddress",
        "surname",
        "usageLocation",
        "onPremisesExtensionAttributes",
    }
)
#: Writable on a synced user (cloud-mastered); everything else is mastered on-premises.
CLOUD_MASTERED = frozenset({"usageLocation", "preferredLanguage"})
_DIRECTORY_EXTENSION = re.compile(r"^extension_[0-9a-f]{32}_\w+$")


class FakeBatch:
    def __init__(self, graph: FakeGraph) -> None:
        self.graph = graph
        self.batches: list[list[dict[str, Any]]] = []  # every accepted batch's requests

    # --- $batch -----------------------------------------------------------------------------
    def handle(self, body: bytes) -> Reply:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return error_reply(400, "BadRequest", "Invalid batch payload format.")
        requests = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(requests, list) or not requests:
            return error_reply(400, "BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_REQUESTS:
            return error_reply(
                400,
                "BadRequest",
                f"Number of batch request steps exceeds the maximum of {MAX_REQUESTS}.",
            )
        ids = [str(r.get("id", "")).lower() for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or "" in ids or len(set(ids)) != len(ids):
            return error_reply(400, "BadRequest", "Batch request ids must be present and unique.")
        for r in requests:
            url = str(r.get("url", ""))
            if "://" in url:
                return error_reply(400, "BadRequest", "Invalid request URL: it must be relative.")
            if "body" in r and not any(
                k.lower() == "content-type" for k in (r.get("headers") or {})
            ):
                return error_reply(
                    400, "BadRequest", "Content-Type header is required when a body is present."
                )
        with self.graph.lock:
            self.batches.append(requests)
        failed: set[str] = set()
        responses = []
        for r in requests:
            rid = str(r["id"])
            depends = [str(d).lower() for d in r.get("dependsOn") or []]
            if any(d in failed for d in depends):
                status, headers, payload = error_reply(
                    424, "FailedDependency", "A request this one depends on failed."
                )
            else:
                status, headers, payload = self._one(r)
            if status >= 400:
                failed.add(rid.lower())
            item: dict[str, Any] = {"id": rid, "status": status, "headers": headers}
            if payload:
                item["body"] = json.loads(payload)
            responses.append(item)
        from tests.graph.fake_wire import json_reply

        return json_reply(200, {"responses": list(reversed(responses))})

    def _one(self, r: dict[str, Any]) -> Reply:
        url = str(r.get("url", ""))
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        path = "/v1.0" + unquote(parts.path)
        method = str(r.get("method", "GET")).upper()
        fault = self.graph._take_fault(method, path)
        if fault is not None:
            return self.graph._fault_response(fault)
        query = {k.lstrip("$").lower(): v for k, v in parse_qsl(parts.query)}
        body = json.dumps(r["body"]).encode() if "body" in r else b""
        return self.graph.route(method, path, query, body)

    # --- PATCH /users/{id} ------------------------------------------------------------------
    def patch_user(self, key: str, body: bytes) -> Reply:
        try:
            changes = json.loads(body or b"{}")
        except ValueError:
            return error_reply(400, "BadRequest", "Unable to read JSON request payload.")
        if not isinstance(changes, dict):
            return error_reply(400, "BadRequest", "Unable to read JSON request payload.")
        for name in changes:
            if name not in UPDATABLE and not _DIRECTORY_EXTENSION.match(name):
                return error_reply(
                    400,
                    "Request_BadRequest",
                    f"Property '{name}' does not exist on type 'microsoft.graph.user'.",
                )
        phones = changes.get("businessPhones")
        if isinstance(phones, list) and len(phones) > 1:
            return error_reply(
                400, "Request_BadRequest", "Only one business phone number can be set."
            )
        with self.graph.lock:
            user_id = self.graph.find(key)
            if user_id is None:
                return error_reply(
                    404, "Request_ResourceNotFound", f"Resource '{key}' does not exist."
                )
            user = self.graph.users[user_id]
            if user.props.get("onPremisesSyncEnabled") and set(changes) - CLOUD_MASTERED:
                return error_reply(
                    400,
                    "Request_BadRequest",
                    "Unable to update the specified properties for on-premises mastered "
                    "Directory Sync objects or objects currently undergoing migration.",
                )
            for name, value in changes.items():
                if name == "onPremisesExtensionAttributes" and isinstance(value, dict):
                    merged = {**(user.props.get(name) or {}), **value}
                    user.props[name] = merged
                elif value is None or value == []:
                    user.props[name] = None
                else:
                    user.props[name] = value
            self.graph._changed(user_id)
        return 204, {"request-id": "fake"}, b""
