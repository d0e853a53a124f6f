"""Graph's wire format for the fake (tests/graph/fake_graph.py): JSON answers with Graph's
headers, the error body (Microsoft Learn, "Microsoft Graph error responses and resource
types": ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}``) and opaque state tokens."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

Reply = tuple[int, dict[str, str], bytes]

MESSAGES = {
    "TooManyRequests": "Too many requests.",
    "serviceNotAvailable": "The service is temporarily unavailable.",
    "generalException": "An internal server error occurred.",
    "syncStateNotFound": "The delta token is expired and data must be synchronized again.",
    "resyncRequired": "A resync is required.",
}


def encode_token(state: dict[str, Any]) -> str:
    """A skip/delta token: opaque to clients, here the round's state in base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def json_reply(status: int, body: Any) -> Reply:
    headers = {
        "Content-Type": "application/json;odata.metadata=minimal;charset=utf-8",
        "request-id": str(uuid.uuid4()),
    }
    return status, headers, json.dumps(body).encode()


def error_reply(status: int, code: str, message: str) -> Reply:
    request_id = str(uuid.uuid4())
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    return json_reply(status, {"error": {"code": code, "message": message, "innerError": inner}})
