"""The storage seam: what the SCIM service needs from a store.

Two implementations honour this protocol and one contract suite
(``tests/store/test_contract.py``) runs against both: :class:`scim_core.store.memory.MemoryStore`
(in-process, for unit tests and CPU benchmarks) and :class:`scim_core.store.table.TableStore`
(Azure Table Storage / Azurite).

Vocabulary
- ``rtype``: ``"User"`` or ``"Group"``.
- ``doc``: the resource's JSON document as stored (a dict with ``id`` and ``meta``); for groups
  *without* ``members`` — members are stored as separate membership rows.
- ``keys``: the index keys of a resource, ``{index_name: normalised value}`` (an operator-chosen
  index of a multi-valued attribute has a key per value: :data:`OPERATOR_INDEX_PREFIX`). Unique
  indexes (``User.userName``, ``Group.displayName``) reject a second resource with the same value
  atomically with the write (:class:`~scim_core.errors.Conflict`). Non-unique indexes
  (``externalId``) map one value to any number of ids. The service normalises the values
  (casefolding for caseExact=false attributes) before it calls the store; a key whose value is
  ``None`` is absent.
- ``etag``: the store's opaque version token of a resource; every write takes the etag it read
  and fails with :class:`~scim_core.errors.PreconditionFailed` if the resource changed since.

Failures raise (never return None/False): ``NotFound``, ``Conflict``, ``PreconditionFailed``,
``PayloadTooLarge`` (document too big for one entity), ``ServiceUnavailable`` (throttled, with
``retry_after``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

#: The index names per resource type, and whether each is unique.
UNIQUE_INDEXES: Mapping[str, tuple[str, ...]] = {"User": ("userName",), "Group": ("displayName",)}
NON_UNIQUE_INDEXES: Mapping[str, tuple[str, ...]] = {
    "User": ("externalId", "lm"),
    "Group": ("externalId", "lm"),
}
#: The time-ordered index: its value is ``meta.lastModified`` as a :func:`stamp`, kept in
#: RowKey order as written (not encoded), so a range read returns changes oldest first.
CHANGE_INDEX = "lm"
#: How long the tombstone of a deleted resource is kept for change polls (README "Change
#: poll"): a poller must poll at least this often, or start again with a full export.
TOMBSTONE_DAYS = 7
#: Index names beginning with this are operator-chosen (``scim_core.indexes``): non-unique,
#: users only. A key ``<name>#<n>`` is the n-th further value of index ``<name>`` (an attribute
#: with several values has one row per value).
OPERATOR_INDEX_PREFIX = "x:"


def index_of(key: str) -> str:
    """The index a key names (``x:emails.value#2`` -> ``x:emails.value``)."""
    return key.partition("#")[0]


def known_index(rtype: str, key: str) -> bool:
    """Whether ``key`` names an index of ``rtype`` (built-in, or operator-chosen for users)."""
    if key in UNIQUE_INDEXES[rtype] or key in NON_UNIQUE_INDEXES[rtype]:
        return True
    name, _, n = key.partition("#")
    return (
        rtype == "User"
        and name.startswith(OPERATOR_INDEX_PREFIX)
        and len(name) > len(OPERATOR_INDEX_PREFIX)
        and (n == "" or n.isdigit())
    )


def clean_keys(rtype: str, keys: Mapping[str, str | None]) -> dict[str, str]:
    """Checks the index names (both stores refuse the same ones) and drops absent (None)
    values."""
    if rtype not in UNIQUE_INDEXES:
        raise ValueError(f"unknown resource type {rtype!r}")
    unknown = {key for key in keys if not known_index(rtype, key)}
    if unknown:
        raise ValueError(f"{rtype} has no index {sorted(unknown)}")
    return {index: value for index, value in keys.items() if value is not None}


def is_non_unique(rtype: str, index: str) -> bool:
    return index in NON_UNIQUE_INDEXES[rtype] or (
        known_index(rtype, index) and index.startswith(OPERATOR_INDEX_PREFIX)
    )


def display_name(doc: Mapping[str, Any]) -> str | None:
    """What a reference to the resource shows as ``display``: a group's ``displayName``; a
    user's ``displayName``, else its ``userName``."""
    for name in ("displayName", "userName"):
        value = doc.get(name)
        if isinstance(value, str) and value:
            return value
    return None


#: A group of at most this many members may be read with its members in one request
#: (:attr:`Stored.members`).
INLINE_MEMBERS = 99


@dataclass(frozen=True)
class Member:
    """One membership row: ``value`` is the member's id, ``type`` ``"User"`` or ``"Group"``."""

    value: str
    type: str = "User"
    display: str | None = None


@dataclass
class Stored:
    """A resource as read from the store.

    ``members``: for a group, its members when the store read or wrote them together with the
    document, at no extra request (a group of at most :data:`INLINE_MEMBERS` members; in the
    order of :meth:`Store.list_members`). ``None`` says nothing about the members: read them
    with ``list_members``."""

    id: str
    doc: dict[str, Any]
    etag: str
    keys: dict[str, str] = field(default_factory=dict)
    members: list[Member] | None = None
    #: Where the resource sits in :meth:`Store.scan` order (set by ``scan``; opaque, store
    #: specific): ``scan(after=position)`` continues right after it.
    position: str = ""


@dataclass(frozen=True)
class Change:
    """A resource changed (``deleted`` False: it exists, last modified at ``stamp``) or deleted
    (at ``stamp``: a tombstone) since some time; ``position`` orders changes (opaque)."""

    position: str
    id: str
    stamp: str
    deleted: bool = False


def stamp(value: datetime) -> str:
    """A point in time as the change index orders it: UTC, microseconds, fixed width, so that
    text order is time order (``2026-12-03T18:25:55.123000Z``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: Most rows one :meth:`Store.outbox_read` returns (a Table Storage response holds 1,000).
MAX_OUTBOX_READ = 1000
#: Outbox queue names: lower-case letters, at most 8 (they sit in a RowKey prefix).
_QUEUE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Outbox:
    """A row written in the **same** entity-group transaction as a resource's change (a
    transactional outbox): the change and its rows commit together or not at all, so a refused
    or crashed write leaves none and an acknowledged one always has them.

    ``queue`` names the consumer (``ev`` events, ``wb`` Graph write-back, ``en`` enrichment of
    new users); ``key`` is unique in the queue and orders it (text order). ``key`` None asks
    the store for an event key (:func:`event_key`): later than every earlier key of the same
    resource, so a queue read in key order sees one resource's rows in commit order.
    ``replace``: upsert (one pending row per key, the last write wins), else the key must be
    new."""

    queue: str
    key: str | None
    body: Mapping[str, Any]
    replace: bool = False

    def __post_init__(self) -> None:
        check_queue(self.queue)
        if self.key is not None:
            check_outbox_key(self.key)


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox row as read: ``etag`` lets a consumer remove it only if not rewritten since."""

    key: str
    body: dict[str, Any]
    etag: str


def check_queue(queue: str) -> None:
    if not (0 < len(queue) <= 8 and set(queue) <= _QUEUE_CHARS):
        raise ValueError(f"outbox queue names are 1-8 lower-case letters, not {queue!r}")


def check_outbox_key(key: str) -> None:
    """Keys become RowKeys: printable, without the characters Table Storage forbids there."""
    if not (0 < len(key) <= 256) or any(c in "/\\#?" or not c.isprintable() for c in key):
        raise ValueError(f"outbox key {key[:40]!r} is empty, too long or has a forbidden character")


def event_key(previous: str | None, new: str | None) -> str:
    """A fresh event key for a resource whose change index (``lm``) moves from ``previous`` to
    ``new`` (a :func:`stamp` each; None: none, e.g. a create or a delete): the later of ``new``
    (or now) and just after ``previous``, then a random part. One resource's writes are
    serialised by its ETag, so its keys grow in commit order whatever the clocks of the
    instances that wrote them say."""
    when = new or stamp(datetime.now(UTC))
    if previous is not None:
        try:
            after = stamp(datetime.fromisoformat(previous.replace("Z", "+00:00")) + _TICK)
        except ValueError:
            after = previous
        when = max(when, after)
    return f"{when}|{secrets.token_hex(6)}"


_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class MemberChange:
    """How a group write changes membership.

    ``replace_all`` set: the members become exactly that list (``add``/``remove`` ignored);
    otherwise ``add`` are inserted (idempotently) and ``remove`` deleted (missing ones ignored).

    A member whose resource does not exist (never did, or was deleted before or while the write
    ran) is never kept: a group never lists a resource that does not exist.
    """

    add: Sequence[Member] = ()
    remove: Sequence[str] = ()
    replace_all: Sequence[Member] | None = None

    @property
    def empty(self) -> bool:
        return self.replace_all is None and not self.add and not self.remove


class Store(Protocol):
    # --- resources (users and groups) ---------------------------------------------------------
    def create(
        self,
        rtype: str,
        doc: dict[str, Any],
        keys: Mapping[str, str | None],
        members: Sequence[Member] = (),
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        """Insert a new resource (``doc["id"]`` set by the caller) with its index rows and, for a
        group, its initial members. One atomic storage transaction when the members fit in it.
        ``outbox`` rows go in the transaction that writes the document (:class:`Outbox`)."""
        ...

    def get(self, rtype: str, id: str) -> Stored:
        """Point read of one resource (without members). ``NotFound`` if absent."""
        ...

    def replace(
        self,
        rtype: str,
        doc: dict[str, Any],
        keys: Mapping[str, str | None],
        etag: str,
        members: MemberChange = MemberChange(),
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        """Overwrite a resource read with ``etag``; moves index rows whose key changed and applies
        the member change (groups). Cost is O(changed members), independent of group size.
        ``outbox`` rows go in the transaction that writes the document."""
        ...

    def delete(
        self, rtype: str, id: str, etag: str | None = None, outbox: Sequence[Outbox] = ()
    ) -> None:
        """Delete a resource, its index rows and every membership row naming it (as a group, or as a
        member of groups). ``etag`` None means unconditional. ``outbox`` rows go in the
        transaction that deletes the document (the last), so a refused delete leaves none."""
        ...

    # --- outbox (rows written with resource changes; see Outbox) ----------------------------------
    def outbox_read(
        self, rtype: str, queue: str, limit: int, after: str | None = None
    ) -> list[OutboxEntry]:
        """At most ``limit`` (1 to 1,000) rows of a queue of the type's partition, in key order,
        from just after the key ``after``: one range read. Rows another writer commits later
        with a smaller key are not lost: a consumer that removes what it handled and reads
        from the start again sees them (docs/events.md, "Ordering")."""
        ...

    def outbox_remove(
        self, rtype: str, queue: str, entries: Sequence[tuple[str, str | None]]
    ) -> int:
        """Removes rows by ``(key, etag)``; etag None: whatever version. A row rewritten since
        it was read (another etag) is kept, a missing one ignored. Batched, 100 a request.
        Returns how many were removed."""
        ...

    def outbox_put(self, rtype: str, items: Sequence[Outbox]) -> None:
        """Writes rows on their own, outside any resource change (upserts; keys given)."""
        ...

    def lookup(self, rtype: str, index: str, value: str) -> list[str]:
        """Ids whose index ``index`` has the (normalised) ``value``: one point read or range
        query."""
        ...

    def scan(
        self, rtype: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Stored]:
        """Every resource of the type (documents only, not index or membership rows), in the
        store's order (each ``Stored.position`` set), from just after the position ``after``.
        Lazy and paged: the store holds one page of documents at a time and reads the next
        when the caller gets that far, so a caller that stops early reads no more.
        ``page_size`` (at most 1,000, Table Storage's page) sizes the storage requests: a
        caller that wants n resources asks for n (+1), not a full page."""
        ...

    def positions(self, rtype: str, after: str | None = None) -> Iterator[str]:
        """The positions of the resources of ``scan`` order after ``after``, read key-only (no
        document): the cheapest way to step over rows Table Storage cannot skip by offset
        (a deep ``startIndex``): 1,000 keys a request."""
        ...

    def changes(
        self, rtype: str, since: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Change]:
        """The resources of the type whose ``lm`` key (a :func:`stamp`) is at or after
        ``since``, and the tombstones of those deleted at or after it (kept
        :data:`TOMBSTONE_DAYS`; every delete writes one in its transaction), oldest first, from
        just after the position ``after``. Key-only index reads, lazy, ``page_size`` (at most
        1,000, the default) rows a request: a poll that wants n changes asks for n + 1."""
        ...

    def purge_tombstones(self, rtype: str, before: str) -> int:
        """Deletes the tombstones older than the stamp ``before``; returns how many."""
        ...

    def bulk_load(
        self, rtype: str, items: Iterable[tuple[dict[str, Any], Mapping[str, str | None]]]
    ) -> int:
        """Insert many new resources fast (batched per storage transaction); returns the count.
        For seeding benchmarks and imports, not for the request path."""
        ...

    def display_names(self, rtype: str, ids: Sequence[str]) -> dict[str, str]:
        """The :func:`display_name` of each of these resources that exists and has one: a point
        read of one small property per id (the Table store sends them concurrently)."""
        ...

    # --- membership ---------------------------------------------------------------------------
    def list_members(
        self, group_id: str, limit: int | None = None, after: str | None = None
    ) -> list[Member]:
        """Members of a group: one range query (paged by the store). With ``limit``, at most
        ``limit + 1`` members from a single request, so the caller can tell whether the group
        has more than ``limit`` without reading it all. One Table Storage page holds 1,000 rows,
        so ``limit`` is at most 999 (TableStore raises ``ValueError`` above). With ``after`` (a
        member id this order returned), only the members after it: a large group is read page
        by page, each page one request."""
        ...

    def has_member(self, group_id: str, member_id: str) -> bool:
        """Whether ``member_id`` is a member of the group: one point read."""
        ...

    def groups_of(self, member_id: str) -> list[str]:
        """Ids of the groups ``member_id`` belongs to: one range query on the reverse rows."""
        ...

    # --- state (Graph sync checkpoints etc.) ----------------------------------------------------
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None:
        """A state record and its etag, or None."""
        ...

    def put_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        """Write a state record; ``etag`` None means "create, must not exist" (Conflict if it
        does), otherwise the write is conditional on that etag (PreconditionFailed). Returns the
        new etag."""
        ...
