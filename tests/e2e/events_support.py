"""What the event-delivery tests share: a request handler with events on (built from app
settings as ``function_app`` builds it), the timers fired through the local host, and a loopback
RFC 8935 receiver whose answers a test scripts."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from devhost.server import LocalHost
from scim_core.events.feed import MAX_EVENTS, EventFeed
from scim_core.events.tokens import new_signing_key
from scim_core.router import Router
from scim_core.settings import Settings
from scim_core.wiring import build_router

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PROV = "urn:ietf:params:scim:event:prov:"


def signing_pem() -> str:
    """A fresh P-256 private key (the SETs are ES256-signed, as an operator's key would)."""
    return new_signing_key()


@dataclass
class EventsApp:
    """The deployment under test: Entra's token, the app's ``events`` token, its handler."""

    router: Router
    entra_token: str
    app_token: str

    @property
    def feed(self) -> EventFeed:
        assert self.router.events is not None
        return self.router.events.feed


def events_app(entra_token: str, **settings: str) -> EventsApp:
    app_token = secrets.token_urlsafe(32)
    env = {
        "TABLES_CONNECTION_STRING": os.environ["TABLES_CONNECTION_STRING"],
        "SCIM_BEARER_TOKEN": entra_token,
        "SCIM_APP_TOKEN": app_token,
        "SCIM_APP_SCOPES": "read events",
        "SCIM_EVENTS": "notice",
        "SCIM_EVENTS_SIGNING_KEY": signing_pem(),
        "SCIM_EVENTS_ISSUER": "https://scim.contoso.test/scim/v2",
        "SCIM_EVENTS_AUDIENCE": "https://app.contoso.test/",
        **settings,
    }
    return EventsApp(build_router(Settings.from_env(env)), entra_token, app_token)


def drain(feed: EventFeed) -> int:
    """Removes every pending event (what other tests of the session left), so a test counts
    only its own."""
    removed = 0
    while True:
        pending, _ = feed.pending(MAX_EVENTS)
        if not pending:
            return removed
        removed += feed.settle([p.jti for p in pending], {})


def all_pending(feed: EventFeed) -> list[str]:
    pending, more = feed.pending(MAX_EVENTS)
    assert not more
    return [p.jti for p in pending]


def fire(local: LocalHost, timer: str) -> None:
    """Runs a timer function through the host's admin endpoint (it answers once the run ends)."""
    url = f"{local.base_url}/admin/functions/{timer}"
    headers = {"x-functions-key": local.admin_key}
    response = requests.post(url, json={"input": ""}, headers=headers, timeout=120)
    assert response.status_code == 202, response.text


@dataclass
class Received:
    """One POST the receiver got, and what it answered."""

    headers: dict[str, str]
    body: str
    status: int

    @property
    def claims(self) -> dict[str, Any]:
        import jwt

        value: dict[str, Any] = jwt.decode(self.body, options={"verify_signature": False})
        return value


@dataclass
class PushReceiver:
    """A loopback RFC 8935 receiver. ``answer(set_token)`` decides each answer:
    ``(status, json body or None, extra headers)``; default 202."""

    answer: Callable[[str], tuple[int, Any, dict[str, str]]] = lambda _: (202, None, {})
    delay: float = 0.0
    got: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[str]:
        """``jti`` of the SETs answered 2xx, in the order they arrived."""
        return [r.claims["jti"] for r in self.got if 200 <= r.status < 300]


def always(status: int, body: Any = None, **headers: str) -> Callable[[str], Any]:
    return lambda _: (status, body, headers)


@contextmanager
def push_receiver(receiver: PushReceiver | None = None) -> Iterator[PushReceiver]:
    state = receiver or PushReceiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            if state.delay:
                time.sleep(state.delay)
            status, payload, extra = state.answer(body)
            with state.lock:
                state.got.append(Received(dict(self.headers.items()), body, status))
            raw = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/events/push"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
