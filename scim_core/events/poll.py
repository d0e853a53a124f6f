"""``POST /Events``: poll-based SET delivery (RFC 8936), and ``GET /Events/keys`` (the JWKS).

Request (RFC 8936 §2.4), a JSON object, every member optional:

- ``ack``: ``jti`` of SETs the receiver has processed: removed, never delivered again;
- ``setErrs``: ``{jti: {"err": ..., "description": ...}}`` of SETs it could not process:
  removed too (logged with the error);
- ``maxEvents``: how many SETs to return at most (0: acknowledge only); default 100, at most
  999;
- ``returnImmediately``: false (the RFC's default) lets the request wait, up to
  ``SCIM_EVENTS_POLL_WAIT_SECONDS``, for a first event when none is pending (long poll).

Acknowledgements are applied first, then the oldest pending SETs are returned (§2.5):
``{"sets": {jti: SET, ...}, "moreAvailable": bool}``. A SET returned but not acknowledged is
returned again by the next poll (at-least-once). A request that is not such an object is a 400
with the RFC's error object, ``{"err": "invalid_request", "description": ...}`` (RFC 8936 §2.6
uses RFC 8935 §2.3's error codes).

Cost: the acks (one EGT per 100 of a partition) and two range reads; each wait step of a long
poll is two more range reads, one a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from scim_core.errors import NotFound, ScimError, ServiceUnavailable
from scim_core.events.feed import MAX_EVENTS, EventFeed
from scim_core.events.tokens import SetEncoder
from scim_core.http import MAX_BODY, ScimRequest, ScimResponse, allow, json_response
from scim_core.payload import decode

DEFAULT_EVENTS = 100
#: Between two reads of a waiting poll.
WAIT_STEP_SECONDS = 1.0


class PollError(ValueError):
    """A poll request RFC 8936 does not allow."""


class EventsEndpoint:
    """Serves ``/Events`` over an :class:`EventFeed`. ``encoder`` None: the signing key is not
    available yet (503)."""

    def __init__(
        self,
        feed: EventFeed,
        encoder: SetEncoder | None,
        wait_seconds: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed, self.encoder = feed, encoder
        self.wait_seconds = wait_seconds
        self._sleep, self._clock = sleep, clock

    def handle(self, req: ScimRequest) -> ScimResponse:
        parts = [p.lower() for p in req.path.split("/") if p]
        if self.encoder is None:
            raise ServiceUnavailable(
                "events are recorded but cannot be delivered yet: the signing key "
                "(SCIM_EVENTS_SIGNING_KEY) is a Key Vault reference the platform has not "
                "resolved; nothing is lost, retry later",
                retry_after=60,
            )
        if parts == ["events", "keys"]:
            allow(req, "GET")
            return _json(200, self.encoder.jwks())
        if parts != ["events"]:
            raise NotFound(f"no event endpoint at {req.path!r}")
        allow(req, "POST")
        try:
            acks, errors, limit, immediately = parse_poll(req.body)
        except PollError as exc:
            return _json(400, {"err": "invalid_request", "description": str(exc)})
        self.feed.settle(acks, errors)
        pending, more = self.feed.pending(limit)
        deadline = self._clock() + self.wait_seconds
        while not pending and limit and not immediately and self._clock() < deadline:
            self._sleep(min(WAIT_STEP_SECONDS, max(0.0, deadline - self._clock())))
            pending, more = self.feed.pending(limit)
        encoder = self.encoder
        sets = {p.jti: encoder.encode(p.rtype, p.entry.key, p.entry.body) for p in pending}
        return _json(200, {"sets": sets, "moreAvailable": more})


def parse_poll(body: bytes) -> tuple[list[str], dict[str, dict[str, Any]], int, bool]:
    """``(ack, setErrs, maxEvents, returnImmediately)`` of a poll body (RFC 8936 §2.4)."""
    if len(body) > MAX_BODY:
        raise PollError(f"the request is over {MAX_BODY} bytes")
    try:
        value = decode(body) if body.strip() else {}
    except ScimError as exc:
        raise PollError(exc.detail) from None
    if not isinstance(value, dict):
        raise PollError("the body must be a JSON object")
    acks = value.get("ack", [])
    if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
        raise PollError("'ack' must be an array of jti strings")
    errors = value.get("setErrs", {})
    if not isinstance(errors, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("err"), str) for e in errors.values()
    ):
        raise PollError("'setErrs' must map each jti to an object with an 'err' string")
    limit = value.get("maxEvents", DEFAULT_EVENTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not limit >= 0:
        raise PollError("'maxEvents' must be a non-negative integer")
    immediately = value.get("returnImmediately", False)
    if not isinstance(immediately, bool):
        raise PollError("'returnImmediately' must be true or false")
    return acks, errors, min(limit, MAX_EVENTS), immediately


def _json(status: int, body: Any) -> ScimResponse:
    resp = json_response(status, body)
    resp.headers["Content-Type"] = "application/json"
    return resp


__all__ = ["EventsEndpoint", "PollError", "parse_poll"]
