"""The sync's records in the ``state`` table (``Store.get_state`` / ``put_state``).

Every write is conditional on the ETag read (``put_state(name, value, etag)``), which is what
keeps overlapping runs apart: a run first takes the cursor's *lease* with a conditional write;
only the lease holder advances the cursor, and each checkpoint is conditional on the ETag of
its own previous write, so a run whose lease was taken over fails its next checkpoint
(:class:`~graph_enrich.errors.LeaseLost`) instead of moving the cursor back or forth.

Records (names are encoded by the store, any characters are fine):

    graph.users.delta        the delta cursor: link, round, lease          (hot: one write a page)
    graph.sync.status        the last run's figures, last success, last error
    graph.notifications      set by the webhook: a change notification is waiting
    graph.subscription       the change-notification subscription's id and expiry
    graph.reconcile          when the reconciliation pass last completed, users Graph lacks
    graph.id.<objectId>      GRAPH_JOIN=userName only: Entra object id -> SCIM id (removed users
                             carry only their id, so they cannot be joined by userPrincipalName)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graph_enrich.errors import LeaseLost
from scim_core.errors import Conflict, NotFound, PreconditionFailed
from scim_core.store import Store

log = logging.getLogger("graph_enrich")

CURSOR = "graph.users.delta"
STATUS = "graph.sync.status"
NOTIFICATIONS = "graph.notifications"
SUBSCRIPTION = "graph.subscription"
RECONCILE = "graph.reconcile"
ID_MAP = "graph.id."


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Cursor:
    """Where the delta sync stands. ``link`` None: the next request starts a full round."""

    link: str | None = None
    full_round: str | None = None
    """Start of the full round in progress (initial or after a resync); None in delta rounds."""
    verify: str | None = None
    """A completed full round whose absent users the reconciliation pass still has to check."""
    owner: str | None = None
    lease_until: str | None = None
    round_pages: int = 0
    round_changes: int = 0
    etag: str | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "etag"}


class CursorStore:
    """The cursor record with its lease."""

    def __init__(
        self, store: Store, now: Callable[[], datetime] = utc_now, name: str = CURSOR
    ) -> None:
        self.store = store
        self.now = now
        self.name = name

    def acquire(self, owner: str, lease_seconds: float) -> Cursor | None:
        """Take the lease, or None when another run holds an unexpired one (or wins the race).
        An expired lease (a run that crashed or was killed) is taken over."""
        found = self.store.get_state(self.name)
        cursor = Cursor() if found is None else _cursor(found[0], found[1])
        holder_until = parse_iso(cursor.lease_until) if cursor.owner else None
        if holder_until is not None and holder_until > self.now() and cursor.owner != owner:
            return None
        cursor.owner = owner
        cursor.lease_until = iso(self.now() + timedelta(seconds=lease_seconds))
        try:
            cursor.etag = self.store.put_state(self.name, cursor.record(), cursor.etag)
        except (PreconditionFailed, Conflict, NotFound):
            return None  # another run took it between our read and our write
        return cursor

    def save(self, cursor: Cursor) -> None:
        """Checkpoint, conditional on our last write."""
        try:
            cursor.etag = self.store.put_state(self.name, cursor.record(), cursor.etag)
        except (PreconditionFailed, Conflict, NotFound) as exc:
            raise LeaseLost(
                "the delta cursor was changed by another run; this run stops without advancing it"
            ) from exc

    def release(self, cursor: Cursor) -> None:
        cursor.owner = cursor.lease_until = None
        with contextlib.suppress(LeaseLost):  # someone else holds it: nothing of ours to free
            self.save(cursor)

    def reset(self) -> None:
        """Forget the cursor (next run starts a full round); for operators and tests."""
        found = self.store.get_state(self.name)
        if found is not None:
            self.store.put_state(self.name, Cursor().record(), found[1])


def _cursor(value: dict[str, Any], etag: str) -> Cursor:
    known = {k: value[k] for k in Cursor.__dataclass_fields__ if k in value and k != "etag"}
    return Cursor(**known, etag=etag)


def update_state(
    store: Store, name: str, change: Callable[[dict[str, Any]], dict[str, Any]], attempts: int = 5
) -> dict[str, Any] | None:
    """Read-modify-write of a small record, retried on concurrent writes. Returns the record
    written, or None when every attempt lost a race (the caller's change is best effort)."""
    for _ in range(attempts):
        found = store.get_state(name)
        current, etag = found if found is not None else ({}, None)
        new = change(dict(current))
        try:
            store.put_state(name, new, etag)
        except (PreconditionFailed, Conflict, NotFound):
            continue
        return new
    log.warning("state record %s: gave up after %d concurrent updates", name, attempts)
    return None


def read_state(store: Store, name: str) -> dict[str, Any]:
    found = store.get_state(name)
    return found[0] if found is not None else {}
