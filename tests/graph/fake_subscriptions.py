"""The fake Graph's ``/subscriptions`` and change-notification delivery (Microsoft Learn,
"Receive change notifications through webhooks"; "subscription resource type").

Creating a subscription first POSTs ``?validationToken=..`` to the notificationUrl and requires
a ``200 text/plain`` echo of the decoded token within 10 s; users allow at most 41,760 minutes
of lifetime; PATCH renews (expirationDateTime), DELETE removes. Notifications are POSTed as a
``changeNotificationCollection``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.graph.fake_wire import Reply, error_reply, json_reply

MAX_USER_SUBSCRIPTION_MINUTES = 41_760
TENANT_ID = "84bd8158-6d4d-4958-8b9f-9d6445542f95"


class FakeSubscriptions:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, dict[str, Any]] = {}
        self.validate_notification_url = True
        self.base_url = ""

    def create(self, body: dict[str, Any]) -> Reply:
        problem = _check_expiry(body.get("expirationDateTime"))
        if problem:
            return problem
        if not body.get("notificationUrl") or not body.get("changeType"):
            return error_reply(
                400, "InvalidRequest", "notificationUrl and changeType are required."
            )
        if self.validate_notification_url and not _validates(body["notificationUrl"]):
            message = (
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request."
            )
            return error_reply(400, "InvalidRequest", message)
        sub = {
            "id": str(uuid.uuid4()),
            "resource": body.get("resource"),
            "changeType": body["changeType"],
            "clientState": body.get("clientState"),
            "notificationUrl": body["notificationUrl"],
            "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
            "expirationDateTime": body["expirationDateTime"],
        }
        with self.lock:
            self.items[sub["id"]] = sub
        return json_reply(201, self._entity(sub))

    def one(self, method: str, sub_id: str, body: bytes) -> Reply:
        with self.lock:
            sub = self.items.get(sub_id)
        if sub is None:
            return error_reply(404, "ResourceNotFound", f"The object '{sub_id}' doesn't exist.")
        if method == "DELETE":
            with self.lock:
                del self.items[sub_id]
            return 204, {}, b""
        if method == "PATCH":
            change = json.loads(body or b"{}")
            problem = _check_expiry(change.get("expirationDateTime"))
            if problem:
                return problem
            sub["expirationDateTime"] = change["expirationDateTime"]
        return json_reply(200, self._entity(sub))

    def _entity(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.context": f"{self.base_url}/$metadata#subscriptions/$entity", **sub}

    def notify(self, user_id: str, change_type: str = "updated") -> list[int]:
        """Deliver a change notification to every subscription; returns the HTTP statuses."""
        statuses = []
        for sub in list(self.items.values()):
            item = {
                "subscriptionId": sub["id"],
                "clientState": sub["clientState"],
                "changeType": change_type,
                "resource": f"Users/{user_id}",
                "subscriptionExpirationDateTime": sub["expirationDateTime"],
                "tenantId": TENANT_ID,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.User",
                    "@odata.id": f"Users/{user_id}",
                    "id": user_id,
                    "organizationId": TENANT_ID,
                },
            }
            payload = json.dumps({"value": [item]}).encode()
            statuses.append(_post(sub["notificationUrl"], payload, "application/json")[0])
        return statuses


def _check_expiry(value: Any) -> Reply | None:
    try:
        expires = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return error_reply(400, "InvalidRequest", "expirationDateTime is required.")
    if expires > datetime.now(UTC) + timedelta(minutes=MAX_USER_SUBSCRIPTION_MINUTES):
        message = "Subscription expiration can only be 41760 minutes in the future."
        return error_reply(400, "InvalidRequest", message)
    return None


def _post(url: str, body: bytes, ctype: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()
    except OSError:
        return 0, "", b""


def _validates(notification_url: str) -> bool:
    """The validation handshake Graph runs before it creates a subscription."""
    # The documented shape: "Validation: Testing client application reachability for
    # subscription Request-Id: <guid>" (Learn, "Receive change notifications through webhooks").
    # The endpoint HTML-escapes what it echoes, which leaves Graph's printable token unchanged.
    token = (
        "Validation: Testing client application reachability for subscription Request-Id:"
        f" {uuid.uuid4()}"
    )
    sep = "&" if "?" in notification_url else "?"
    started = time.monotonic()
    url = f"{notification_url}{sep}validationToken={quote(token)}"
    status, ctype, body = _post(url, b"", "text/plain; charset=utf-8")
    return (
        status == 200
        and ctype.startswith("text/plain")
        and body.decode() == token
        and time.monotonic() - started < 10
    )
