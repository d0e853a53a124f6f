"""RFC 8935 push: a timer delivers the pending SETs to the app's receiver, one SET per POST.

Opt-in with ``SCIM_EVENTS_PUSH_URL`` (https; plain http only to the loopback address, for
tests). On the wire (RFC 8935 §2.1)::

    POST <SCIM_EVENTS_PUSH_URL>
    Content-Type: application/secevent+jwt
    Accept: application/json
    Authorization: Bearer <SCIM_EVENTS_PUSH_TOKEN>      (when set; RFC 8935 §3, RFC 6750)

    <the SET, exactly as a poll returns it>

What the receiver's answer does:

- **2xx** (the RFC's success is 202 Accepted, §2.2): delivered. The event is removed as a poll's
  ``ack`` removes it; it is never sent again by push or poll (§2: once acknowledged, keeping it is
  the receiver's job).
- **400 with the RFC's error object** (§2.3: ``{"err": ..., "description": ...}``):
  - ``err: invalid_request`` (§2.4: the SET cannot be parsed or its event does not conform):
    *this* SET is refused for good. Sending it again would fail again (RFC 8935 §4, "Delivery
    Reliability": a structural error is "likely to remain when retransmitting the same SET"),
    so it is removed as a poll's ``setErrs`` removes it, and logged with the receiver's error
    (a warning naming the ``jti``). The run goes on with the next SET.
  - any other ``err`` (``invalid_key``, ``invalid_issuer``, ``invalid_audience``,
    ``authentication_failed``, ``access_denied`` or one not registered): the receiver refuses
    our *configuration* (key, issuer, audience, credential), which every SET shares and an
    operator can fix. Removing SETs for it would lose events, so it is a failure as below.
- **anything else** (5xx, 429, 401/403, a 400 without the error object, a redirect, a timeout,
  a refused connection, a TLS error): the run stops at that SET, which stays at the head of the
  stream, and the next run starts after an exponential back-off (30 s, 1, 2, 4, 8 minutes, then
  every 15 minutes; a longer ``Retry-After`` on a 429/503 is honoured up to an hour). A receiver
  down for an hour loses nothing: its SETs wait in the outbox and go out in order when it is back.

Giving up, exactly: a SET is pushed only while it is younger than
``SCIM_EVENTS_PUSH_GIVE_UP_HOURS`` (default 24), counted from its commit (its ``iat``). Each run
reads the pending events from that cutoff on, so an older SET -- one the receiver kept failing
for that long, or a backlog push could not drain in time -- is no longer pushed but stays
pollable at ``POST /Events`` until acknowledged there or removed by the retention
(``SCIM_EVENTS_RETENTION_DAYS``). Each run that finds such SETs logs a warning and records the
oldest one's ``jti`` in the state record. Set the give-up at or above the retention to never give
up.

One run at a time: the state record ``events.push`` (the store's state table) carries a lease
claimed with a conditional write (its ETag), so a second instance whose timer fires at the same
time skips the run rather than pushing the same SETs twice; the Functions host already runs a
timer on one instance at a time (Learn, "Timer trigger for Azure Functions", the singleton lock:
https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer). The record also
holds the back-off (``failures``, ``failingSince``, ``retryAt``, ``lastError``) and the last
run's figures.

Delivery is at least once: a run that stops between the receiver's 202 and the removal sends
that SET again, so a receiver deduplicates by ``jti`` (docs/events.md). A run is bounded: at most
``max_sets`` SETs and ``run_seconds`` seconds (each POST at most ``POST_TIMEOUT_SECONDS`` more),
well inside the Functions timeout (host.json: 5 minutes).
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from scim_core.auth import LOOPBACK_HOSTS
from scim_core.errors import Conflict, PreconditionFailed
from scim_core.events.feed import MAX_EVENTS, EventFeed
from scim_core.events.tokens import SET_TYPE, SetEncoder
from scim_core.store.protocol import stamp

log = logging.getLogger("scim_core.events")

#: The state record of the push (lease, back-off, last run).
STATE = "events.push"
#: Events read per storage read (the removals of a batch are written before the next read).
BATCH = 100
MAX_SETS_PER_RUN = 2000
RUN_SECONDS = 45.0
POST_TIMEOUT_SECONDS = 10.0
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 900.0
#: The longest ``Retry-After`` honoured.
RETRY_AFTER_CAP_SECONDS = 3600.0
#: Most bytes of a receiver's answer read (an error object is small).
MAX_ANSWER_BYTES = 64 * 1024
#: RFC 8935 §2.4 errors about the transmitter's configuration, not the SET: shared by every SET.
CONFIGURATION_ERRORS = frozenset(
    {"invalid_key", "invalid_issuer", "invalid_audience", "authentication_failed", "access_denied"}
)


def check_push_url(url: str) -> str:
    """``url`` if SETs may be pushed to it: https, or http to the loopback address only (as
    :func:`scim_core.auth.check_jwks_url` for JWKS). ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"SCIM_EVENTS_PUSH_URL {url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(
            "SCIM_EVENTS_PUSH_URL must not carry credentials: set SCIM_EVENTS_PUSH_TOKEN"
        )
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url
    raise ValueError(
        f"SCIM_EVENTS_PUSH_URL {url!r} must use https (plain http only to the loopback address)"
    )


@dataclass(frozen=True)
class PushConfig:
    """The push settings: receiver URL, its bearer token, the give-up age."""

    url: str
    token: str | None = field(default=None, repr=False)
    give_up: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: Any) -> PushConfig | None:
        """None when push is off (no URL). ValueError for a setting that cannot work."""
        url = settings.events_push_url
        if not url:
            return None
        text = str(settings.events_push_give_up_hours)
        try:
            hours = float(text)
        except ValueError:
            hours = float("nan")
        if not 0 < hours <= 24 * 3650:
            raise ValueError(
                f"SCIM_EVENTS_PUSH_GIVE_UP_HOURS must be a positive number, not {text!r}"
            )
        token = settings.events_push_token
        if token and token.startswith("@Microsoft.KeyVault("):
            raise ValueError("SCIM_EVENTS_PUSH_TOKEN is an unresolved Key Vault reference")
        return cls(check_push_url(url), token or None, timedelta(hours=hours))


@dataclass(frozen=True)
class Answer:
    """What one POST came to: ``delivered``, ``refused`` (this SET, for good) or ``failed``
    (stop and back off)."""

    kind: Literal["delivered", "refused", "failed"]
    detail: str
    error: Mapping[str, Any] | None = None
    retry_after: float | None = None


class Receiver:
    """The receiver's endpoint over one kept-alive connection (http.client: no redirect is
    followed, a 3xx is a failure)."""

    def __init__(self, url: str, token: str | None, timeout: float = POST_TIMEOUT_SECONDS) -> None:
        parts = urllib.parse.urlsplit(check_push_url(url))
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._headers = {"Content-Type": f"application/{SET_TYPE}", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                context = ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def post(self, token: str) -> Answer:
        """POSTs one SET (RFC 8935 §2.1) and classifies the answer (the module docstring)."""
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request("POST", self._target, body=token.encode(), headers=self._headers)
                resp = conn.getresponse()
                body = resp.read(MAX_ANSWER_BYTES + 1)
                if len(body) > MAX_ANSWER_BYTES or resp.will_close:
                    self.close()
                return _classify(resp.status, resp.getheader("Retry-After"), body)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # A kept-alive connection the receiver closed meanwhile: one fresh attempt.
                if attempt == 1 and reused:
                    continue
                return Answer("failed", f"{type(exc).__name__}: {exc}")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                return Answer("failed", f"{type(exc).__name__}: {exc}"[:300])
        raise AssertionError("unreachable")


def _classify(status: int, retry_after: str | None, body: bytes) -> Answer:
    if 200 <= status < 300:
        return Answer("delivered", f"HTTP {status}")
    error = _error_object(body) if status == 400 else None
    if error is not None:
        err = str(error["err"])
        detail = f"HTTP 400 {err}: {str(error.get('description', ''))[:200]}"
        if err in CONFIGURATION_ERRORS:
            return Answer("failed", detail + " (the receiver refuses this endpoint's settings)")
        if err == "invalid_request":
            return Answer("refused", detail, error=error)
        return Answer("failed", detail + " (an error code RFC 8935 does not register)")
    wait = _seconds(retry_after) if status in (429, 503) else None
    return Answer("failed", f"HTTP {status}", retry_after=wait)


def _error_object(body: bytes) -> dict[str, Any] | None:
    """RFC 8935 §2.3's error object, or None if the body is not one."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(value, dict) and isinstance(value.get("err"), str):
        return value
    return None


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` in seconds (RFC 9110 §10.2.3: delay-seconds; an HTTP date is ignored)."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), RETRY_AFTER_CAP_SECONDS)
    return None


def backoff_seconds(failures: int, retry_after: float | None = None) -> float:
    """The wait after ``failures`` failed runs in a row: 30 s doubling to 15 minutes, or the
    receiver's ``Retry-After`` when longer."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(max(0, failures - 1), 30))
    return max(delay, retry_after or 0.0)


@dataclass
class PushRun:
    """One run's figures (also written to the state record's ``lastRun``)."""

    outcome: str = "idle"
    pushed: int = 0
    refused: int = 0
    error: str | None = None
    gave_up_from: str | None = None

    def record(self, started: datetime, finished: datetime) -> dict[str, Any]:
        run = {
            "started": stamp(started),
            "finished": stamp(finished),
            "outcome": self.outcome,
            "pushed": self.pushed,
            "refused": self.refused,
        }
        if self.error:
            run["error"] = self.error
        return run


class Pusher:
    """Pushes the pending SETs of a feed to a receiver (the module docstring)."""

    def __init__(
        self,
        feed: EventFeed,
        encoder: SetEncoder,
        config: PushConfig,
        *,
        max_sets: int | None = None,
        run_seconds: float | None = None,
        receiver: Callable[[], Receiver] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.feed, self.encoder, self.config = feed, encoder, config
        # Read here, not at definition: a run's budget is the module's at the time.
        self.max_sets = MAX_SETS_PER_RUN if max_sets is None else max_sets
        self.run_seconds = RUN_SECONDS if run_seconds is None else run_seconds
        self._receiver = receiver or (lambda: Receiver(config.url, config.token))
        self._clock, self._now = clock, now

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.run_seconds + 2 * POST_TIMEOUT_SECONDS + 30)

    def run(self) -> PushRun:
        """One run: skipped while another holds the lease or the back-off lasts; else pushes
        from the head of the stream (from the give-up cutoff) until none is left, a failure,
        or the budget."""
        store = self.feed.store
        started = self._now()
        found = store.get_state(STATE)
        state, etag = found if found is not None else ({}, None)
        for until, why in (
            (state.get("lease"), "another run holds the lease"),
            (state.get("retryAt"), "backing off after a failure"),
        ):
            if isinstance(until, str) and until > stamp(started):
                return PushRun(outcome=f"skipped: {why} until {until}")
        cutoff = stamp(started - self.config.give_up)
        result = PushRun()
        head, _ = self.feed.pending(1)
        if head and head[0].entry.key <= cutoff:
            result.gave_up_from = head[0].jti
            log.warning(
                "event push: SETs older than SCIM_EVENTS_PUSH_GIVE_UP_HOURS (from %s) are no "
                "longer pushed; they stay pollable at POST /Events until the retention",
                head[0].jti,
            )
        first, _ = self.feed.pending(1, after=cutoff)
        if (
            not first
            and not state.get("failures")
            and state.get("gaveUpFrom") == result.gave_up_from
        ):
            return result  # nothing to push and nothing to record: no write
        try:
            etag = store.put_state(STATE, {**state, "lease": stamp(started + self.lease)}, etag)
        except (Conflict, PreconditionFailed):
            return PushRun(outcome="skipped: another run holds the lease")
        failure: Answer | None = None
        try:
            failure = self._push(cutoff, result)
        except Exception as exc:
            # A storage or encoding error: recorded and backed off like a receiver's failure,
            # then raised for the host to log with the invocation id.
            failure = Answer("failed", f"{type(exc).__name__} in the push run (see the app log)")
            raise
        finally:
            self._finish(state, etag, started, result, failure)
        return result

    def _push(self, cutoff: str, result: PushRun) -> Answer | None:
        deadline = self._clock() + self.run_seconds
        receiver = self._receiver()
        try:
            while result.pushed + result.refused < self.max_sets and self._clock() < deadline:
                room = min(BATCH, MAX_EVENTS, self.max_sets - result.pushed - result.refused)
                batch, more = self.feed.pending(room, after=cutoff)
                if not batch:
                    break
                acks: list[str] = []
                errors: dict[str, Mapping[str, Any]] = {}
                failure = None
                for event in batch:
                    if self._clock() >= deadline:
                        result.outcome = "budget"
                        break
                    answer = receiver.post(
                        self.encoder.encode(event.rtype, event.entry.key, event.entry.body)
                    )
                    if answer.kind == "delivered":
                        acks.append(event.jti)
                        result.pushed += 1
                    elif answer.kind == "refused":
                        errors[event.jti] = answer.error or {"err": "invalid_request"}
                        result.refused += 1
                    else:
                        failure = answer
                        break
                self.feed.settle(acks, errors)
                if failure is not None:
                    return failure
                if not more:
                    break
            else:
                if result.outcome == "idle":
                    result.outcome = "budget"
            return None
        finally:
            receiver.close()

    def _finish(
        self,
        state: dict[str, Any],
        etag: str,
        started: datetime,
        result: PushRun,
        failure: Answer | None,
    ) -> None:
        finished = self._now()
        new: dict[str, Any] = {k: v for k, v in state.items() if k not in ("lease", "retryAt")}
        if failure is None and result.outcome in ("idle",) and (result.pushed or result.refused):
            result.outcome = "delivered"
        if failure is not None:
            # Progress in this run restarts the streak: the receiver works, intermittently.
            failures = 1 if result.pushed or result.refused else int(state.get("failures") or 0) + 1
            wait = backoff_seconds(failures, failure.retry_after)
            result.outcome, result.error = "failed", failure.detail
            new |= {
                "failures": failures,
                "failingSince": state.get("failingSince") or stamp(started),
                "retryAt": stamp(finished + timedelta(seconds=wait)),
                "lastError": failure.detail,
            }
            log.warning(
                "event push to %s failed (%s): %d pushed this run; next try in %.0f s "
                "(%d failed runs in a row)",
                urllib.parse.urlsplit(self.config.url).hostname,
                failure.detail,
                result.pushed,
                wait,
                failures,
            )
        else:
            new |= {"failures": 0, "failingSince": None, "lastError": None}
            if result.pushed or result.refused:
                log.info(
                    "event push: %d SETs delivered, %d refused by the receiver",
                    result.pushed,
                    result.refused,
                )
        new["gaveUpFrom"] = result.gave_up_from
        new["lastRun"] = result.record(started, finished)
        try:
            self.feed.store.put_state(STATE, new, etag)
        except PreconditionFailed:
            log.warning("event push: the lease expired before the run ended; its state not written")


def build_pusher(feed: EventFeed, encoder: SetEncoder, settings: Any) -> Pusher | None:
    """The push of the app settings, None when ``SCIM_EVENTS_PUSH_URL`` is unset."""
    config = PushConfig.from_settings(settings)
    return None if config is None else Pusher(feed, encoder, config)


__all__ = [
    "STATE",
    "Answer",
    "PushConfig",
    "PushRun",
    "Pusher",
    "Receiver",
    "backoff_seconds",
    "build_pusher",
    "check_push_url",
]
