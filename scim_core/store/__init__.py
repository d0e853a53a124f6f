"""Storage backends behind one seam.

- :mod:`scim_core.store.protocol`: the :class:`Store` protocol and the values it trades in. The
  rest of ``scim_core`` (and ``graph_enrich``) talks to this only.
- :mod:`scim_core.store.memory`: :class:`MemoryStore`, in-process (unit tests, CPU benchmarks).
- :mod:`scim_core.store.table`: :class:`TableStore`, Azure Table Storage / Azurite, with its
  entity layout (:mod:`~scim_core.store.documents`, :mod:`~scim_core.store.membership`),
  transaction framing (:mod:`~scim_core.store.batch`), error translation
  (:mod:`~scim_core.store.errors`) and HTTP transport (:mod:`~scim_core.store.transport`).

Only this package imports ``azure.*``; importing it does not: the Table store's modules load the
SDK when a store is built (``scim_core.wiring``).
"""

from scim_core.store.protocol import (
    CHANGE_INDEX,
    INLINE_MEMBERS,
    NON_UNIQUE_INDEXES,
    TOMBSTONE_DAYS,
    UNIQUE_INDEXES,
    Change,
    Member,
    MemberChange,
    Outbox,
    OutboxEntry,
    Store,
    Stored,
    stamp,
)

__all__ = [
    "CHANGE_INDEX",
    "INLINE_MEMBERS",
    "TOMBSTONE_DAYS",
    "Change",
    "NON_UNIQUE_INDEXES",
    "UNIQUE_INDEXES",
    "Member",
    "MemberChange",
    "Outbox",
    "OutboxEntry",
    "Store",
    "Stored",
    "stamp",
]
