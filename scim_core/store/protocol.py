"""The storage seam: what the SCIM service needs from a store.

Two implementations honour this protocol and one contract suite
(``tests/store/test_contract.py``) runs against both: :class:`scim_core.store.memory.MemoryStore`
(in-process, for unit tests and CPU benchmarks) and :class:`scim_core.store.table.TableStore`
(Azure Table Storage / Azurite).

Vocabulary
- ``rtype``: ``"User"`` or ``"Group"``.
- ``doc``: the resource's JSON document as stored (a dict with ``id`` and ``meta``); for groups
  *without* ``members`` — members are stored as separate membership rows.
- ``keys``: the index keys of a resource, ``{index_name: normalised value}``. Unique indexes
  (``User.userName``, ``Group.displayName``) reject a second resource with the same value
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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The index names per resource type, and whether each is unique.
UNIQUE_INDEXES: Mapping[str, tuple[str, ...]] = {"User": ("userName",), "Group": ("displayName",)}
NON_UNIQUE_INDEXES: Mapping[str, tuple[str, ...]] = {
    "User": ("externalId",),
    "Group": ("externalId",),
}
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
    ) -> Stored:
        """Insert a new resource (``doc["id"]`` set by the caller) with its index rows and, for a
        group, its initial members. One atomic storage transaction when the members fit in it."""
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
    ) -> Stored:
        """Overwrite a resource read with ``etag``; moves index rows whose key changed and applies
        the member change (groups). Cost is O(changed members), independent of group size."""
        ...

    def delete(self, rtype: str, id: str, etag: str | None = None) -> None:
        """Delete a resource, its index rows and every membership row naming it (as a group, or as a
        member of groups). ``etag`` None means unconditional."""
        ...

    def lookup(self, rtype: str, index: str, value: str) -> list[str]:
        """Ids whose index ``index`` has the (normalised) ``value``: one point read or range
        query."""
        ...

    def scan(self, rtype: str) -> Iterator[Stored]:
        """Every resource of the type (documents only, not index or membership rows)."""
        ...

    def bulk_load(
        self, rtype: str, items: Iterable[tuple[dict[str, Any], Mapping[str, str | None]]]
    ) -> int:
        """Insert many new resources fast (batched per storage transaction); returns the count.
        For seeding benchmarks and imports, not for the request path."""
        ...

    # --- membership ---------------------------------------------------------------------------
    def list_members(self, group_id: str, limit: int | None = None) -> list[Member]:
        """Members of a group: one range query (paged by the store). With ``limit``, at most
        ``limit + 1`` members from a single request, so the caller can tell whether the group
        has more than ``limit`` without reading it all. One Table Storage page holds 1,000 rows,
        so ``limit`` is at most 999 (TableStore raises ``ValueError`` above)."""
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
