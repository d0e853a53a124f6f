"""Event retention: a timer removes the events nobody acknowledged within
``SCIM_EVENTS_RETENTION_DAYS`` (default 7).

It reads only the head of each partition's event queue (event rows older than the cutoff, 1,000
a request: :meth:`~scim_core.events.feed.EventFeed.purge`) and never a resource row, so its cost
is the expired events, not the directory's size. A removed event is gone for poll and push
alike: an app that was away longer than the retention re-reads the resources it cares about
(a cursor export, docs/events.md "Reprocessing") and resumes the events from there.

The run writes the ``events.retention`` state record (when, the cutoff's age, how many went),
which ``python -m devhost --fire-timer events_retention`` reports.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from scim_core.errors import Conflict, PreconditionFailed
from scim_core.events.feed import EventFeed
from scim_core.store.protocol import stamp

STATE = "events.retention"


def retention_days(text: str) -> float:
    """``SCIM_EVENTS_RETENTION_DAYS`` as a number (ValueError unless 0.01 to 3,650)."""
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not 0.01 <= days <= 3650:
        raise ValueError(f"SCIM_EVENTS_RETENTION_DAYS must be 0.01 to 3650 days, not {text!r}")
    return days


def purge_expired(feed: EventFeed, days: float, now: datetime | None = None) -> int:
    """Removes the events older than ``days``; records the run; returns how many went."""
    ran = now or datetime.now(UTC)
    removed = feed.purge(days, ran)
    record = {"ran": stamp(ran), "days": days, "removed": removed}
    found = feed.store.get_state(STATE)
    # Another instance recording its run meanwhile is no failure: either record says the same.
    with suppress(Conflict, PreconditionFailed):
        feed.store.put_state(STATE, record, found[1] if found else None)
    return removed


__all__ = ["STATE", "purge_expired", "retention_days"]
