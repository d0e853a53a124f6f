"""The outbox producers of an instance, from its settings: one list, used by every writer (the
SCIM service, Bulk through it, and the Graph enrichment timer), so each committed change gets
the same rows whoever made it (scim_core/outbox.py)."""

from __future__ import annotations

from scim_core.events.record import EventProducer
from scim_core.outbox import Producer
from scim_core.settings import Settings


def event_producer(settings: Settings) -> EventProducer:
    """``SCIM_EVENTS`` as a producer (ValueError for a value that is not off/notice/full)."""
    return EventProducer(settings.events)


def producers(settings: Settings) -> list[Producer]:
    """Every producer the settings turn on, in the order their rows are written."""
    events = event_producer(settings)
    return [events] if events.enabled else []
