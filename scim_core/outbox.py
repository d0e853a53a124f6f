"""What a committed change leaves behind for the consumers of the transactional outbox.

Every write of a user or group (the SCIM service's, Bulk's, the Graph enrichment's) describes
itself as a :class:`ChangeRecord` and asks each registered :data:`Producer` for the outbox rows
that go with it (:class:`~scim_core.store.protocol.Outbox`); the store writes them in the same
entity-group transaction as the change. Producers: provisioning events
(:mod:`scim_core.events.record`), and those ``scim_core.wiring`` adds (Graph write-back,
enrichment of new users).

A producer is pure: it reads the record and returns rows; it never reads or writes storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scim_core.store.protocol import MemberChange, Outbox

Kind = Literal["create", "put", "patch", "delete"]
#: Who made the change: Entra's provisioning credential, the app's credential (``app:write``)
#: or the Graph enrichment timer.
Origin = Literal["provisioning", "app", "enrichment"]


@dataclass(frozen=True)
class ChangeRecord:
    """One change about to be committed. ``before``: the document as read (None for a create,
    and for a delete that read none); ``after``: as written (None for a delete). ``members``:
    a group's member change. ``txn``: shared by the records of one request."""

    rtype: str
    id: str
    kind: Kind
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    origin: Origin = "provisioning"
    members: MemberChange = field(default_factory=MemberChange)
    txn: str = field(default_factory=lambda: uuid.uuid4().hex)


Producer = Callable[[ChangeRecord], Sequence[Outbox]]


def rows_for(producers: Sequence[Producer], record: ChangeRecord) -> list[Outbox]:
    """Every producer's rows for ``record``, in producer order."""
    return [row for produce in producers for row in produce(record)]


__all__ = ["ChangeRecord", "Kind", "Origin", "Producer", "rows_for"]
