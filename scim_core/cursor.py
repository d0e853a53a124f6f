"""Cursors of cursor-based pagination (RFC 9865): opaque to the client, signed, expiring.

A cursor names a place in one query's result order: ``base64url(JSON) "." base64url(MAC)``,
the MAC an HMAC-SHA-256 (RFC 2104) over the JSON under the instance's cursor key. The JSON
holds the query's digest (filter, sort, plan: a cursor replayed on another query is refused),
the position after which the next page starts, how many resources the walk has returned, and
when the cursor expires. Nothing in it is secret (positions are resource keys the client may
see anyway); the MAC makes it unforgeable, so a position is never a client-chosen string.

The key is a random 256-bit value the first cursor request of an instance creates in the
store's ``state`` table (``cursor-key``) and every process of the instance then shares: no app
setting to provision or rotate, and nothing in the repo or in logs. Deleting that row rotates
the key; cursors issued before then answer ``invalidCursor``.

Errors are RFC 9865's: a cursor that does not verify, or was issued for another query, is 400
``invalidCursor``; one older than :data:`CURSOR_TIMEOUT` (announced as ``cursorTimeout`` in
ServiceProviderConfig) is 400 ``expiredCursor``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim_core.errors import Conflict, ExpiredCursor, InvalidCursor
from scim_core.store import Store

#: Seconds a cursor stays valid after it was issued (ServiceProviderConfig ``cursorTimeout``).
CURSOR_TIMEOUT = 3600
#: The state row holding the instance's cursor key.
KEY_STATE = "cursor-key"
#: Longest cursor accepted: a position is a RowKey (<= 1 KiB) plus a few fields.
MAX_CURSOR_CHARS = 4096


@dataclass(frozen=True)
class Position:
    """Where a cursor walk stands: after ``after`` (None: at the start), ``returned`` resources
    returned so far."""

    after: str | None
    returned: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_digest(*parts: Any) -> str:
    """A short digest of what defines a result order (resource type, filter, sort, plan)."""
    return _b64(hashlib.sha256(json.dumps(parts).encode()).digest()[:12])


class CursorCodec:
    """Issues and checks the cursors of one instance (key from :func:`load_key`)."""

    def __init__(self, key: bytes, clock: Callable[[], float] | None = None) -> None:
        self._key = key
        self._given_clock = clock

    def _clock(self) -> float:
        return (self._given_clock or time.time)()

    def issue(self, query: str, position: Position) -> str:
        body = {
            "q": query,
            "a": position.after,
            "n": position.returned,
            "x": int(self._clock()) + CURSOR_TIMEOUT,
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        return f"{_b64(data)}.{_b64(self._mac(data))}"

    def open(self, cursor: str, query: str) -> Position:
        """The position a cursor names; raises ``InvalidCursor`` / ``ExpiredCursor``."""
        body = self._verified(cursor)
        if body.get("q") != query:
            raise InvalidCursor(
                "the cursor belongs to another query: send the same filter and sortBy as the "
                "request that returned it"
            )
        after, returned, expires = body.get("a"), body.get("n"), body.get("x")
        if not (
            (after is None or isinstance(after, str))
            and isinstance(returned, int)
            and isinstance(expires, int)
        ):
            raise InvalidCursor("the cursor is not one this service issued")
        if self._clock() > expires:
            raise ExpiredCursor(
                f"the cursor expired (cursors are valid {CURSOR_TIMEOUT} s): start the walk "
                "again without a cursor value"
            )
        return Position(after, returned)

    def _verified(self, cursor: str) -> dict[str, Any]:
        bad = InvalidCursor("the cursor is not one this service issued")
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise bad
        data_part, mac_part = cursor.split(".")
        try:
            data, mac = _unb64(data_part), _unb64(mac_part)
        except (binascii.Error, ValueError):
            raise bad from None
        if not hmac.compare_digest(mac, self._mac(data)):
            raise bad
        try:
            body = json.loads(data)
        except ValueError:
            raise bad from None
        if not isinstance(body, dict):
            raise bad
        return body

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


def load_key(store: Store) -> bytes:
    """The instance's cursor key: read from the state table, created there on first use.
    Concurrent first uses agree: one create wins (the others get Conflict and read it)."""
    for _ in range(3):
        found = store.get_state(KEY_STATE)
        if found is not None and isinstance(found[0].get("key"), str):
            return bytes.fromhex(found[0]["key"])
        key = secrets.token_hex(32)
        try:
            store.put_state(KEY_STATE, {"key": key}, None)
        except Conflict:
            continue  # another process created it first: read theirs
        return bytes.fromhex(key)
    raise RuntimeError("the cursor key could not be read or created")  # pragma: no cover
