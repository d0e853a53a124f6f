"""A local fake of the Microsoft Graph endpoints graph_enrich calls, on 127.0.0.1.

Wire format as documented on Microsoft Learn (v1.0), each behaviour beside its source:

- ``GET /users/delta`` ("user: delta"; "Use delta query to track changes"): an initial round
  returns every current user, ``@odata.nextLink`` (``$skiptoken``) while pages remain and an
  ``@odata.deltaLink`` (``$deltatoken``) on the last page; a deltaLink round returns the users
  changed since, collapsed to their latest state. ``$select`` is encoded in the tokens. Selected
  properties come back whether changed or not, ``null`` when cleared, omitted when never set.
  Removed users are ``{"id": .., "@removed": {"reason": "changed"|"deleted"}}`` ("changed":
  soft-deleted, restorable; "deleted": permanently). ``manager`` in ``$select`` tracks the
  relationship as the ``manager@delta`` annotation (``$expand`` is not supported on user delta).
  ``members@delta`` exists for groups only, so it never appears here.
- Resync ("Synchronization reset", "Token duration"): ``410 Gone`` with a ``Location`` header
  and an error body, code ``syncStateNotFound`` (expired token) or ``resyncRequired``.
- Throttling ("Microsoft Graph throttling guidance"): ``429`` with ``Retry-After`` seconds and
  a ``TooManyRequests`` error body; ``503`` likewise.
- Errors: ``{"error": {"code", "message", "innerError": {"date", "request-id",
  "client-request-id"}}}``; a missing permission is ``403 Authorization_RequestDenied``.
- ``GET /users/{id | userPrincipalName}`` with ``$select`` and ``$expand=manager``;
- ``GET /users?$filter=startswith(userPrincipalName,'<prefix>')`` ("List users"; "user resource
  type": userPrincipalName supports ``startsWith``; OData string literals double a quote;
  directory string comparisons ignore case): ``{"@odata.context", "value": [...]}`` with the
  same ``$select``/``$expand``; any other filter answers ``400 Request_UnsupportedQuery``;
  ``GET /directory/deletedItems/{id}`` finds soft-deleted users only.
- ``PATCH /users/{id | userPrincipalName}`` ("Update user"): 204 No Content; the change shows
  in the next delta round like any other; ``null`` clears a property; an unknown property is
  ``400 Request_BadRequest``; a user synced from on-premises AD (``onPremisesSyncEnabled``)
  refuses the properties mastered on-premises with 400 (tests/graph/fake_batch.py);
- ``POST /$batch`` ("Combine multiple HTTP requests using JSON batching"): tests/graph/
  fake_batch.py (at most 20 requests, relative URLs, per-request status, any order, 429
  inside the batch with its own Retry-After);
- ``/subscriptions``: tests/graph/fake_subscriptions.py; the wire helpers: fake_wire.py.
Deliberate differences: plain HTTP on loopback (Graph is HTTPS only and so are notification
URLs), a fixed bearer token instead of Entra-issued ones, and faults scripted by the tests.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.graph.fake_batch import FakeBatch
from tests.graph.fake_subscriptions import FakeSubscriptions
from tests.graph.fake_wire import (
    MESSAGES,
    Reply,
    decode_token,
    encode_token,
    error_reply,
    json_reply,
)

TOKEN = "fake-graph-token"
_USER_ODATA = "#microsoft.graph.user"
#: The one list filter graph_enrich sends (OData: ``''`` is a quote inside a string literal).
_STARTSWITH_UPN = re.compile(r"startswith\(userPrincipalName,\s*'((?:[^']|'')*)'\)", re.IGNORECASE)


@dataclass
class Fault:
    """A scripted failure: the next ``times`` requests that ``match`` get this answer."""

    status: int
    code: str
    retry_after: int | None = None
    location: bool = False
    match: Callable[[str, str], bool] = lambda method, path: True
    times: int = 1


@dataclass
class _User:
    props: dict[str, Any] = field(default_factory=dict)  # only properties ever set
    manager: str | None = None
    manager_was: str | None = None  # the removed manager, until a manager is set again
    removed: str | None = None  # None | "changed" | "deleted"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeGraph:
    """The fake's state and behaviour; :meth:`serve` runs it on a loopback port."""

    def __init__(self, page_size: int = 200) -> None:
        self.page_size = page_size
        self.lock = threading.Lock()
        self.users: dict[str, _User] = {}
        self.log: list[tuple[int, str]] = []  # (sequence, user id) in change order
        self.seq = 0
        self.generation = 0  # bumped by expire_tokens(): older tokens are gone
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.subs = FakeSubscriptions()
        self.forbidden = False
        self.on_request: Callable[[Request], None] | None = None
        self.base_url = ""
        self._rounds: dict[tuple[str, int, int], list[str]] = {}
        self._removed_at: dict[str, int] = {}  # user id -> sequence of its removal
        self.batch = FakeBatch(self)

    @property
    def subscriptions(self) -> dict[str, dict[str, Any]]:
        return self.subs.items

    @property
    def validate_notification_url(self) -> bool:
        return self.subs.validate_notification_url

    @validate_notification_url.setter
    def validate_notification_url(self, value: bool) -> None:
        self.subs.validate_notification_url = value

    def notify(self, user_id: str, change_type: str = "updated") -> list[int]:
        return self.subs.notify(user_id, change_type)

    # --- directory changes (what an admin does in Entra) ------------------------------------------
    def put_user(
        self, user_id: str | None = None, *, manager: str | None = None, **props: Any
    ) -> str:
        """Create or update a user (properties merge; ``None`` clears a property)."""
        user_id = user_id or str(uuid.uuid4())
        with self.lock:
            user = self.users.setdefault(user_id, _User())
            user.props.update(props)
            user.removed = None
            self._removed_at.pop(user_id, None)
            if manager is not None:
                user.manager, user.manager_was = manager, None
            self._changed(user_id)
        return user_id

    def remove_manager(self, user_id: str) -> None:
        with self.lock:
            user = self.users[user_id]
            user.manager_was, user.manager = user.manager, None
            self._changed(user_id)

    def delete_user(self, user_id: str, *, permanently: bool = False) -> None:
        with self.lock:
            self.users[user_id].removed = "deleted" if permanently else "changed"
            self._changed(user_id)
            self._removed_at[user_id] = self.seq

    def bulk_users(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Many users at once (benchmarks): one change each."""
        with self.lock:
            for user_id, props in items:
                self.users.setdefault(user_id, _User()).props.update(props)
                self._changed(user_id)

    def expire_tokens(self) -> None:
        """Every skip/delta token issued so far becomes invalid (410 syncStateNotFound)."""
        with self.lock:
            self.generation += 1

    def fail(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def _changed(self, user_id: str) -> None:
        self.seq += 1
        self.log.append((self.seq, user_id))

    # --- the HTTP API -----------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = {k.lstrip("$").lower(): v for k, v in parse_qsl(parts.query)}
        request = Request(method, path, query, headers)
        with self.lock:
            self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return error_reply(401, "InvalidAuthenticationToken", "Access token is empty.")
        if self.forbidden:
            return error_reply(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        fault = self._take_fault(method, path)
        if fault is not None:
            return self._fault_response(fault)
        if not path.startswith("/v1.0/"):
            return error_reply(404, "BadRequest", "Invalid version.")
        if method == "POST" and path == "/v1.0/$batch":
            return self.batch.handle(body)
        return self.route(method, path, query, body)

    def route(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
        """One authenticated request below the version root (also each request of a batch)."""
        rest = path[len("/v1.0/") :]
        if method == "PATCH" and rest.startswith("users/"):
            return self.batch.patch_user(rest[len("users/") :], body)
        if method == "GET" and rest in (
            "users/delta",
            "users/delta()",
            "users/microsoft.graph.delta()",
        ):
            return self._delta(query)
        if method == "GET" and rest == "users":
            return self._list_users(query)
        if method == "GET" and rest.startswith("users/"):
            return self._get_user(rest[len("users/") :], query)
        if method == "GET" and rest.startswith("directory/deletedItems/"):
            return self._deleted_item(rest[len("directory/deletedItems/") :])
        if rest == "subscriptions" and method == "POST":
            return self.subs.create(json.loads(body or b"{}"))
        if rest.startswith("subscriptions/"):
            return self.subs.one(method, rest[len("subscriptions/") :], body)
        return error_reply(400, "BadRequest", f"Resource not found for the segment '{rest}'.")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Reply:
        status, headers, body = error_reply(fault.status, fault.code, MESSAGES.get(fault.code, "."))
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.location:
            headers["Location"] = f"{self.base_url}/users/delta?$deltatoken="
        return status, headers, body

    # --- delta ------------------------------------------------------------------------------------
    def _delta(self, query: dict[str, str]) -> Reply:
        with self.lock:
            token = query.get("skiptoken") or query.get("deltatoken")
            if token:  # an empty $deltatoken (a 410's Location) is the initial query
                state = decode_token(token)
                if state is None or state["gen"] != self.generation:
                    status, headers, body = error_reply(
                        410,
                        "syncStateNotFound",
                        "The delta token is expired and data must be synchronized again.",
                    )
                    headers["Location"] = f"{self.base_url}/users/delta?$deltatoken="
                    return status, headers, body
                if query.get("deltatoken"):  # a new round: the changes since the last one
                    state = {
                        "kind": "delta",
                        "from": state["to"],
                        "to": self.seq,
                        "off": 0,
                        "sel": state["sel"],
                        "gen": self.generation,
                    }
            else:
                select = [s for s in query.get("select", "").split(",") if s]
                state = {
                    "kind": "initial",
                    "from": 0,
                    "to": self.seq,
                    "off": 0,
                    "sel": select,
                    "gen": self.generation,
                }
            ids = self._round_ids(state)
            page = ids[state["off"] : state["off"] + self.page_size]
            items = [self._item(user_id, state["sel"]) for user_id in page]
            body: dict[str, Any] = {
                "@odata.context": f"{self.base_url}/$metadata#users"
                + (f"({','.join(state['sel'])})" if state["sel"] else ""),
            }
            if state["off"] + self.page_size < len(ids):
                nxt = {**state, "off": state["off"] + self.page_size}
                body["@odata.nextLink"] = (
                    f"{self.base_url}/users/delta?$skiptoken={encode_token(nxt)}"
                )
            else:
                done = {**state, "off": 0}
                body["@odata.deltaLink"] = (
                    f"{self.base_url}/users/delta?$deltatoken={encode_token(done)}"
                )
            body["value"] = items
        return json_reply(200, body)

    def _round_ids(self, state: dict[str, Any]) -> list[str]:
        """The users of a round, in a stable order so that page offsets hold (cached)."""
        key = (state["kind"], state["from"], state["to"])
        if key not in self._rounds:
            if state["kind"] == "initial":
                # Every user that existed when the round began (current state, so one deleted
                # meanwhile comes back as @removed, which the docs allow in initial rounds).
                ids = sorted({u for seq, u in self.log if seq <= state["to"]})
                # "Resources that have been created and deleted prior to the initial delta
                # query won't be returned."
                ids = [
                    u
                    for u in ids
                    if self._first_removed(u) is None or self._first_removed(u) > state["to"]
                ]
            else:
                latest: dict[str, int] = {}
                for seq, user_id in self.log:
                    if state["from"] < seq <= state["to"]:
                        latest[user_id] = seq
                ids = sorted(latest, key=latest.__getitem__)
            self._rounds[key] = ids
        return self._rounds[key]

    def find(self, key: str) -> str | None:
        """The live user whose id or userPrincipalName (any case) is ``key`` (lock held)."""
        user = self.users.get(key)
        if user is not None:  # an object id: no scan (the benchmarks read 10k users by id)
            return key if user.removed is None else None
        return next(
            (
                u
                for u, user in self.users.items()
                if user.removed is None
                and (
                    u == key or str(user.props.get("userPrincipalName", "")).lower() == key.lower()
                )
            ),
            None,
        )

    def _first_removed(self, user_id: str) -> int | None:
        return self._removed_at.get(user_id)

    def _item(self, user_id: str, select: list[str]) -> dict[str, Any]:
        user = self.users[user_id]
        if user.removed is not None:
            return {"id": user_id, "@removed": {"reason": user.removed}}
        wanted = [s for s in select if s not in ("id", "manager")] or list(user.props)
        item = {name: user.props[name] for name in wanted if name in user.props}
        item["id"] = user_id
        if "manager" in select:
            if user.manager is not None:
                item["manager@delta"] = [{"@odata.type": _USER_ODATA, "id": user.manager}]
            elif user.manager_was is not None:
                item["manager@delta"] = [
                    {
                        "@odata.type": _USER_ODATA,
                        "id": user.manager_was,
                        "@removed": {"reason": "deleted"},
                    }
                ]
        return item

    # --- single user ------------------------------------------------------------------------------
    def _get_user(self, key: str, query: dict[str, str]) -> Reply:
        with self.lock:
            found = self.find(key)
            if found is None:
                return error_reply(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{key}' does not exist or one of its queried reference-"
                    "property objects are not present.",
                )
            body: dict[str, Any] = {"@odata.context": f"{self.base_url}/$metadata#users/$entity"}
            body.update(self._entity(found, query))
        return json_reply(200, body)

    def _entity(self, user_id: str, query: dict[str, str]) -> dict[str, Any]:
        """One user as a single-user GET or a list returns it (``$select``, ``$expand``)."""
        user = self.users[user_id]
        select = [s for s in query.get("select", "").split(",") if s]
        body: dict[str, Any] = {}
        for name in select or list(user.props):
            if name != "manager":
                body[name] = user.props.get(name)
        body["id"] = user_id
        if query.get("expand", "").startswith("manager") and user.manager is not None:
            body["manager"] = {"@odata.type": _USER_ODATA, "id": user.manager}
        return body

    def _list_users(self, query: dict[str, str]) -> Reply:
        match = _STARTSWITH_UPN.fullmatch(query.get("filter", "").strip())
        if match is None:
            return error_reply(
                400,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for property "
                "'userPrincipalName' of resource 'User'.",
            )
        prefix = match.group(1).replace("''", "'").casefold()
        with self.lock:
            value = [
                self._entity(u, query)
                for u, user in self.users.items()
                if user.removed is None
                and str(user.props.get("userPrincipalName", "")).casefold().startswith(prefix)
            ]
        return json_reply(
            200, {"@odata.context": f"{self.base_url}/$metadata#users", "value": value}
        )

    def _deleted_item(self, object_id: str) -> Reply:
        """Soft-deleted users stay in deletedItems for 30 days; permanently deleted ones not."""
        with self.lock:
            user = self.users.get(object_id)
            if user is None or user.removed != "changed":
                return error_reply(
                    404, "Request_ResourceNotFound", f"Resource '{object_id}' does not exist."
                )
            body = {
                "@odata.context": f"{self.base_url}/$metadata#directoryObjects/$entity",
                "@odata.type": _USER_ODATA,
                "id": object_id,
                "deletedDateTime": datetime.now(UTC).isoformat(),
            }
        return json_reply(200, body)

    # --- hosting ----------------------------------------------------------------------------------
    @contextmanager
    def serve(self) -> Iterator[FakeGraph]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, out, payload = fake.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in out.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1.0"
        self.subs.base_url = self.base_url
        thread = threading.Thread(target=server.serve_forever, name="fake-graph", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
