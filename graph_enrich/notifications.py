"""The Graph change-notification webhook (``POST /graph/notifications``) and what it triggers.

Microsoft Learn, "Receive change notifications through webhooks":
- validation: Graph POSTs ``?validationToken=<token>``; answer within 10 s with ``200``,
  ``text/plain`` and the URL-decoded token as the body. The page advises escaping the token
  before echoing it: the echo is a reflection of caller-chosen text, so besides text/plain and
  ``nosniff`` it is HTML-escaped and a token with control characters (CR/LF, NUL ...) is refused.
  Graph's own tokens are plain printable text, which escaping leaves unchanged;
- notifications: answer 2xx within 3 seconds or Graph retries and eventually throttles the
  endpoint; "if your service can take more than 3 seconds ... persist the notification, return
  202 - Accepted, then process"; "validate the clientState property".

What "process" means here: notifications are hints, never data -- delta stays the source of
truth (their order is not guaranteed and an acknowledged one can still be lost). So the webhook
records a pending request in the state table (``graph.notifications``, one small conditional
write) and answers 202. A debounced background thread of this process then runs a short delta
sync, which takes the same cursor lease as the timer, so the two can never overlap. Why a
thread rather than waiting for the timer: a change then arrives in seconds instead of up to
15 minutes. Why that is safe on Functions, where work after the response is not guaranteed:
the request is already persisted and the sync resumes from its checkpoint, so if the instance
is recycled mid-run the timer's next run (which also sees the request) finishes the work.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graph_enrich.budget import NOTIFIED_BUDGET_SECONDS
from graph_enrich.state import NOTIFICATIONS, SUBSCRIPTION, iso, update_state, utc_now
from scim_core.errors import ScimError
from scim_core.settings import UNRESOLVED_KEY_VAULT_REFERENCE, Settings
from scim_core.store import Store

log = logging.getLogger("graph_enrich")

MAX_BODY = 1_048_576
MAX_TOKEN = 2048
#: Seconds the background run waits before it starts: notifications come in bursts (one per
#: changed user), and Graph documents "varying delays" before a change shows up in delta.
DEBOUNCE_SECONDS = 5.0


@dataclass(frozen=True)
class WebhookRequest:
    query: Mapping[str, str]
    """Decoded query parameters."""
    body: bytes = b""


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


StartSync = Callable[[Settings, Store], None]


def receive(
    req: WebhookRequest, settings: Settings, store: Store, start_sync: StartSync | None = None
) -> WebhookResponse:
    """Answer one webhook request; ``start_sync`` (default: the debounced background run) is
    called when a valid notification arrived."""
    expected = settings.graph_client_state
    if not expected:
        return WebhookResponse(404, b"change notifications are not configured")
    if expected.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
        # GRAPH_CLIENT_STATE is a Key Vault reference the platform could not resolve: its text
        # is guessable, so it must never be accepted as the clientState. 503: Graph retries.
        log.warning("graph webhook: GRAPH_CLIENT_STATE is an unresolved Key Vault reference")
        return WebhookResponse(503, b"change notifications are not available")
    token = req.query.get("validationToken")
    if token is not None:
        if len(token) > MAX_TOKEN:
            return WebhookResponse(400, b"validation token too long")
        if not token.isprintable():
            return WebhookResponse(400, b"validation token holds control characters")
        return WebhookResponse(
            200,
            html.escape(token, quote=True).encode("utf-8"),
            headers={"X-Content-Type-Options": "nosniff"},
        )
    if len(req.body) > MAX_BODY:
        return WebhookResponse(413, b"notification too large")
    try:
        items = json.loads(req.body).get("value")
    except (ValueError, AttributeError, RecursionError):
        items = None
    if not isinstance(items, list):
        return WebhookResponse(400, b"expected a changeNotificationCollection")
    valid = [i for i in items if isinstance(i, dict) and _state_matches(i, expected)]
    if len(valid) < len(items):
        # Not from our subscription (or a stale clientState): never acted upon. 202 all the
        # same: a forger learns nothing, and Graph does not retry for 4 hours.
        log.warning(
            "graph webhook: ignored %d notification(s) with a wrong clientState",
            len(items) - len(valid),
        )
    if not valid:
        return WebhookResponse(202)
    try:
        recorded = _record(store, valid)
    except ScimError as exc:
        log.warning("graph webhook: could not record the notification: %s", exc)
        recorded = False
    if not recorded:
        # Not persisted: a 5xx makes Graph deliver it again ("If the notification isn't
        # persisted, return a 5xx class code").
        return WebhookResponse(503, b"try again")
    (start_sync or BACKGROUND.request)(settings, store)
    return WebhookResponse(202)


def _state_matches(item: dict[str, Any], expected: str) -> bool:
    got = item.get("clientState")
    return isinstance(got, str) and hmac.compare_digest(got.encode(), expected.encode())


def _record(store: Store, items: list[dict[str, Any]]) -> bool:
    now = iso(utc_now())

    def pending(record: dict[str, Any]) -> dict[str, Any]:
        return {"requested": now, "count": int(record.get("count", 0)) + len(items)}

    if update_state(store, NOTIFICATIONS, pending) is None:
        return False
    events = {i.get("lifecycleEvent") for i in items} - {None}
    if events & {"reauthorizationRequired", "subscriptionRemoved"}:
        # Lifecycle notifications: the timer renews (or re-creates) the subscription.
        removed = "subscriptionRemoved" in events
        update_state(
            store, SUBSCRIPTION, lambda r: {**r, "renew": True, **({"id": None} if removed else {})}
        )
    return True


class _Background:
    """At most one notification-triggered run per process; requests during a run queue one
    more run (coalesced), so a burst of notifications costs one or two delta rounds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False

    def request(self, settings: Settings, store: Store) -> None:
        with self._lock:
            if self._thread is not None:
                self._again = True
                return
            self._thread = threading.Thread(
                target=self._run, args=(settings, store), name="graph-sync-notified", daemon=True
            )
            self._thread.start()

    def _run(self, settings: Settings, store: Store) -> None:
        from graph_enrich.sync import SyncOptions, run_sync  # msgraph loads here, off-request

        while True:
            time.sleep(DEBOUNCE_SECONDS)
            try:
                run_sync(
                    settings,
                    store,
                    SyncOptions(budget_seconds=NOTIFIED_BUDGET_SECONDS, reason="notification"),
                )
            except Exception:
                log.exception("graph sync (notification) failed")
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False

    def wait_idle(self, timeout: float) -> bool:
        """Whether no run is in progress within ``timeout`` seconds (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._thread is None:
                    return True
            time.sleep(0.05)
        return False


BACKGROUND = _Background()
