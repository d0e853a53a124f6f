"""The pending events of both partitions as one stream, oldest first.

Event rows live in the outbox of the partition their change wrote (users', groups'), keyed by
commit time and, per resource, in commit order (store/protocol.event_key). A row is *pending*
until the receiver acknowledges it (``ack``) or reports it failed (``setErrs``): then it is
removed. Delivery always reads from the head of the pending rows, so:

- unacknowledged SETs are delivered again, in every poll or push until acknowledged;
- acknowledged SETs are gone: never delivered again;
- a writer that commits late with a smaller key than rows already delivered (its clock, or a
  slow transaction) is not skipped: nothing ever moves past a row that is still there, so the
  next read from the head returns it (the outbox-ordering hazard; tests/e2e/test_events.py
  has the concurrent-writer test);
- a read costs what it returns: one range read per partition of at most ``limit + 1`` rows,
  however many events are pending behind them (bench/README.md, "Events").

Across resources the stream is in key order (commit time, as each instance's clock saw it);
per resource it is in commit order, which is the guarantee docs/events.md gives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_core.events.record import EVENTS
from scim_core.events.tokens import jti_of, parse_jti
from scim_core.store import OutboxEntry, Store
from scim_core.store.protocol import MAX_OUTBOX_READ, stamp

log = logging.getLogger("scim_core.events")
RTYPES = ("User", "Group")
#: Most SETs one read returns (each partition is read for at most ``limit + 1`` rows).
MAX_EVENTS = MAX_OUTBOX_READ - 1


@dataclass(frozen=True)
class Pending:
    """One pending event: its partition, outbox row, and ``jti``."""

    rtype: str
    entry: OutboxEntry

    @property
    def jti(self) -> str:
        return jti_of(self.rtype, self.entry.key)


class EventFeed:
    """Reads and settles the pending events of a store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def pending(self, limit: int, after: str | None = None) -> tuple[list[Pending], bool]:
        """The oldest ``limit`` (0 to :data:`MAX_EVENTS`) pending events in key order, and
        whether more are pending. Two range reads (one per partition), none when ``limit`` is
        0. ``after``: only events whose key is after it (a time stamp: the push's give-up
        cutoff, scim_core/events/push.py); never a moving cursor, so no late writer is
        skipped."""
        if not 0 <= limit <= MAX_EVENTS:
            raise ValueError(f"read 0 to {MAX_EVENTS} events, not {limit}")
        if limit == 0:
            return [], False
        rows = [
            Pending(rtype, entry)
            for rtype in RTYPES
            for entry in self.store.outbox_read(rtype, EVENTS, limit + 1, after)
        ]
        rows.sort(key=lambda p: (p.entry.key, p.rtype))
        return rows[:limit], len(rows) > limit

    def settle(self, acks: Iterable[str], errors: Mapping[str, Mapping[str, Any]]) -> int:
        """Removes the acknowledged events and those the receiver reported failed (logged with
        its error code: the receiver said it cannot process them, so they are not sent again,
        RFC 8936 §2.4.3). Unknown or already removed ``jti`` are ignored. Returns how many were
        removed."""
        by_type: dict[str, list[tuple[str, str | None]]] = {t: [] for t in RTYPES}
        for jti in [*acks, *errors]:
            parsed = parse_jti(jti)
            if parsed is not None:
                by_type[parsed[0]].append((parsed[1], None))
        for jti, error in errors.items():
            if parse_jti(jti) is not None:
                log.warning(
                    "event receiver could not process SET %s: %s (%s)",
                    jti,
                    str(error.get("err", ""))[:64],
                    str(error.get("description", ""))[:256],
                )
        return sum(
            self.store.outbox_remove(rtype, EVENTS, rows) for rtype, rows in by_type.items() if rows
        )

    def purge(self, days: float, now: datetime | None = None) -> int:
        """Removes pending events older than ``days`` (the retention): reads only event rows
        older than the cutoff, from the head of each partition's queue, 1,000 a request, and
        never a resource row. Returns how many were removed."""
        cutoff = stamp((now or datetime.now(UTC)) - timedelta(days=days))
        removed = 0
        for rtype in RTYPES:
            while True:
                page = self.store.outbox_read(rtype, EVENTS, MAX_OUTBOX_READ)
                old = [(e.key, e.etag) for e in page if e.key < cutoff]
                if not old:
                    break
                gone = self.store.outbox_remove(rtype, EVENTS, old)
                removed += gone
                if gone == 0 or len(old) < len(page):
                    break
        if removed:
            log.info("event retention removed %d events older than %s days", removed, days)
        return removed
