"""Request counters for the status route, without a storage write per request.

Each process counts its SCIM answers in memory, by hour and status code, and merges them into
one state record (``status.requests``) at most once per ``flush_every`` seconds, piggybacked on
a request and written from a background thread: one read and one ETag-conditional write per
process and minute, whatever the request rate, and no added latency. The status route reads the
record (one point read) and adds the counts this process has not flushed yet.

What that costs in accuracy: counts a process held when it was recycled or killed (at most the
last minute of one instance) are lost; the figures are exact for a single process and close for
several. Concurrent flushes from several instances retry on the ETag (``MAX_ATTEMPTS``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scim_core.errors import Conflict, PreconditionFailed, ScimError
from scim_core.store import Store

log = logging.getLogger("scim")

RECORD = "status.requests"
BUCKET_SECONDS = 3600
#: Hourly buckets kept: the last 24 hours plus the current, partial one.
KEEP_BUCKETS = 25
FLUSH_SECONDS = 60.0
MAX_ATTEMPTS = 5


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Activity:
    """Counts answers by (hour, status); ``record`` never raises and never touches storage
    itself."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        flush_every: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending: Counter[tuple[int, str]] = Counter()
        self._last_request: float | None = None
        self._last_flush = clock()
        self._flushing = False

    def record(self, status: int) -> None:
        now = self.clock()
        with self._lock:
            self._pending[(int(now // BUCKET_SECONDS), str(status))] += 1
            if status != 401:  # an unauthenticated caller is not Entra
                self._last_request = now
            due = not self._flushing and now - self._last_flush >= self.flush_every
            if due:
                self._flushing = True
        if due:
            threading.Thread(target=self.flush, name="activity-flush", daemon=True).start()

    def flush(self) -> None:
        """Merge the pending counts into the record; on failure they stay pending."""
        with self._lock:
            pending, last = self._pending, self._last_request
            self._pending = Counter()
        try:
            if pending or last is not None:
                self._merge(pending, last)
        except ScimError as exc:
            log.warning("status counters not saved (kept for the next flush): %s", exc)
            with self._lock:
                self._pending.update(pending)
        finally:
            with self._lock:
                self._last_flush, self._flushing = self.clock(), False

    def _merge(self, pending: Counter[tuple[int, str]], last: float | None) -> None:
        for _ in range(MAX_ATTEMPTS):
            found = self.store.get_state(RECORD)
            current, etag = found if found is not None else ({}, None)
            merged = merge(current, pending, last, self.clock())
            try:
                self.store.put_state(RECORD, merged, etag)
                return
            except (Conflict, PreconditionFailed):  # another instance flushed in between
                continue
        log.warning("status counters: %d concurrent flushes; kept for the next", MAX_ATTEMPTS)
        with self._lock:
            self._pending.update(pending)

    def snapshot(self) -> dict[str, Any]:
        """The last 24 hours: one point read, plus this process's unflushed counts."""
        found = self.store.get_state(RECORD)
        with self._lock:
            pending, last = Counter(self._pending), self._last_request
        now = self.clock()
        return summarize(merge(found[0] if found else {}, pending, last, now), now)


def merge(
    record: dict[str, Any], pending: Counter[tuple[int, str]], last: float | None, now: float
) -> dict[str, Any]:
    """The record with ``pending`` added and buckets older than ``KEEP_BUCKETS`` hours dropped."""
    oldest = int(now // BUCKET_SECONDS) - KEEP_BUCKETS + 1
    buckets: dict[str, dict[str, int]] = {
        hour: dict(counts)
        for hour, counts in dict(record.get("buckets") or {}).items()
        if hour.isdigit() and int(hour) >= oldest
    }
    for (hour, status), count in pending.items():
        if hour >= oldest:
            slot = buckets.setdefault(str(hour), {})
            slot[status] = int(slot.get(status, 0)) + count
    previous = record.get("lastRequest")
    latest = iso(last) if last is not None else None
    return {
        "buckets": buckets,
        "lastRequest": max(filter(None, [previous, latest]), default=None),
    }


def summarize(record: dict[str, Any], now: float) -> dict[str, Any]:
    since = now - 24 * BUCKET_SECONDS
    by_status: Counter[str] = Counter()
    for hour, counts in dict(record.get("buckets") or {}).items():
        if (int(hour) + 1) * BUCKET_SECONDS > since:
            by_status.update({status: int(n) for status, n in counts.items()})
    errors = {s: n for s, n in by_status.items() if s >= "400"}
    return {
        "lastRequest": record.get("lastRequest"),
        "last24h": {
            "requests": sum(by_status.values()),
            "errors": sum(errors.values()),
            "byStatus": dict(sorted(by_status.items())),
        },
    }
