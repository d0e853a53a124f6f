"""An in-process :class:`~scim_core.store.Store` for unit tests and CPU benchmarks.

It has the same semantics as :class:`scim_core.store.table.TableStore` — the contract suite
(``tests/store/test_contract.py``) runs against both — but no I/O: every operation is a few dict
look-ups under one lock. Documents are kept as JSON text, so a caller mutating a returned document
never changes the stored one (as with real storage) and the size limit is measured the same way.
"""

from __future__ import annotations

import bisect
import itertools
import json
import marshal
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scim_core.errors import Conflict, NotFound, PayloadTooLarge, PreconditionFailed
from scim_core.store.protocol import (
    CHANGE_INDEX,
    INLINE_MEMBERS,
    MAX_OUTBOX_READ,
    UNIQUE_INDEXES,
    Change,
    Member,
    MemberChange,
    Outbox,
    OutboxEntry,
    Stored,
    check_queue,
    clean_keys,
    display_name,
    event_key,
    index_of,
    is_non_unique,
    stamp,
)

#: Largest document (compact UTF-8 JSON) either store accepts. Kept equal to
#: ``scim_core.store.documents.MAX_DOCUMENT_BYTES``: the 1 MiB Table entity limit minus room for
#: keys and property overhead. The contract suite checks both stores draw the line in one place.
MAX_DOCUMENT_BYTES = 1_000_000

_NO_CHANGE = MemberChange()


@dataclass
class _Row:
    json: str
    etag: str
    keys: dict[str, str]
    #: The document as it reads back from JSON, marshalled: every read returns a fresh copy, and
    #: marshal.loads makes it in ~3 µs where json.loads takes ~5 µs (a scan copies every
    #: document before the filter sees it; bench/README.md "Fixes").
    frozen: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.frozen = marshal.dumps(json.loads(self.json))


class MemoryStore:
    """Thread-safe in-memory store; one lock serialises every operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions = itertools.count(1)
        self._rows: dict[tuple[str, str], _Row] = {}
        self._unique: dict[tuple[str, str, str], str] = {}  # (rtype, index, value) -> id
        self._non_unique: dict[tuple[str, str, str], set[str]] = {}
        self._members: dict[str, dict[str, Member]] = {}  # group id -> member id -> Member
        self._groups_of: dict[str, set[str]] = {}  # member id -> group ids (the reverse rows)
        self._state: dict[str, tuple[str, str]] = {}  # name -> (json, etag)
        self._order: dict[str, list[str]] = {}  # rtype -> sorted ids (scan order), a cache
        self._tombstones: dict[str, dict[str, str]] = {}  # rtype -> id -> stamp of its delete
        #: (rtype, queue) -> key -> (body JSON, etag): the outbox rows
        self._outbox: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}

    # --- resources ----------------------------------------------------------------------------
    def create(
        self,
        rtype: str,
        doc: dict[str, Any],
        keys: Mapping[str, str | None],
        members: Sequence[Member] = (),
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        id_, text, clean = str(doc["id"]), _dump(doc), clean_keys(rtype, keys)
        if members and rtype != "Group":
            raise ValueError("only groups have members")
        rows = [(o, _dump(o.body)) for o in outbox]
        with self._lock:
            if (rtype, id_) in self._rows:
                raise Conflict(f"a {rtype} with this id already exists")
            self._check_unique(rtype, id_, clean)
            self._check_outbox(rtype, rows)
            self._write_outbox(rtype, rows, None, clean.get(CHANGE_INDEX))
            row = _Row(text, self._etag(), clean)
            self._rows[rtype, id_] = row
            self._order.pop(rtype, None)
            self._add_index(rtype, id_, clean)
            for member in members:
                self._add_member(id_, member)
            return self._stored(rtype, id_, row)

    def get(self, rtype: str, id: str) -> Stored:
        with self._lock:
            return self._stored(rtype, id, self._row(rtype, id))

    def replace(
        self,
        rtype: str,
        doc: dict[str, Any],
        keys: Mapping[str, str | None],
        etag: str,
        members: MemberChange = _NO_CHANGE,
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        id_, text, clean = str(doc["id"]), _dump(doc), clean_keys(rtype, keys)
        if not members.empty and rtype != "Group":
            raise ValueError("only groups have members")
        rows = [(o, _dump(o.body)) for o in outbox]
        with self._lock:
            old = self._row(rtype, id_)
            if old.etag != etag:
                raise PreconditionFailed(f"{rtype} {id_} was modified since it was read")
            self._check_unique(rtype, id_, clean)
            self._check_outbox(rtype, rows)
            self._write_outbox(rtype, rows, old.keys.get(CHANGE_INDEX), clean.get(CHANGE_INDEX))
            self._drop_index(rtype, id_, old.keys)
            row = _Row(text, self._etag(), clean)
            self._rows[rtype, id_] = row
            self._add_index(rtype, id_, clean)
            if members.replace_all is not None:
                for member_id in list(self._members.get(id_, {})):
                    self._remove_member(id_, member_id)
                add: Sequence[Member] = members.replace_all
                remove: Sequence[str] = ()
            else:
                add, remove = members.add, members.remove
            # Same order as TableStore: an id both added and removed ends up removed.
            for member in add:
                self._add_member(id_, member)
            for member_id in remove:
                self._remove_member(id_, member_id)
            return self._stored(rtype, id_, row)

    def delete(
        self, rtype: str, id: str, etag: str | None = None, outbox: Sequence[Outbox] = ()
    ) -> None:
        rows = [(o, _dump(o.body)) for o in outbox]
        with self._lock:
            row = self._row(rtype, id)
            if etag is not None and row.etag != etag:
                raise PreconditionFailed(f"{rtype} {id} was modified since it was read")
            self._check_outbox(rtype, rows)
            self._write_outbox(rtype, rows, row.keys.get(CHANGE_INDEX), None)
            del self._rows[rtype, id]
            self._order.pop(rtype, None)
            self._tombstones.setdefault(rtype, {})[id] = stamp(datetime.now(UTC))
            self._drop_index(rtype, id, row.keys)
            for member_id in list(self._members.get(id, {})) if rtype == "Group" else ():
                self._remove_member(id, member_id)
            for group_id in list(self._groups_of.get(id, ())):
                self._remove_member(group_id, id)

    def lookup(self, rtype: str, index: str, value: str) -> list[str]:
        with self._lock:
            if index in UNIQUE_INDEXES[rtype]:
                found = self._unique.get((rtype, index, value))
                return [] if found is None else [found]
            if is_non_unique(rtype, index) and "#" not in index:
                return sorted(self._non_unique.get((rtype, index, value), ()))
            raise ValueError(f"{rtype} has no index {index!r}")

    def scan(
        self, rtype: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Stored]:
        # Positions are the ids, in code-point order. ``page_size`` only matters to storage
        # that reads pages; here a page is a slice of the sorted ids taken under the lock.
        size = page_size or 1000
        while True:
            with self._lock:
                ids = self._sorted_ids(rtype)
                start = bisect.bisect_right(ids, after) if after is not None else 0
                chosen = ids[start : start + size]
                page = [self._stored(rtype, id_, self._rows[rtype, id_]) for id_ in chosen]
            for stored in page:
                stored.position = stored.id
                yield stored
            if len(page) < size:
                return
            after = page[-1].id

    def positions(self, rtype: str, after: str | None = None) -> Iterator[str]:
        with self._lock:
            ids = self._sorted_ids(rtype)
        start = bisect.bisect_right(ids, after) if after is not None else 0
        return iter(ids[start:])

    def changes(
        self, rtype: str, since: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Change]:
        # Positions "<stamp>|<id>", as the Table store's; a snapshot taken under the lock.
        start = after if after is not None else since
        with self._lock:
            found = [
                Change(f"{value}|{id_}", id_, value)
                for (t, index, value), ids in self._non_unique.items()
                if t == rtype and index == CHANGE_INDEX
                for id_ in ids
            ]
            found += [
                Change(f"{when}|{id_}", id_, when, True)
                for id_, when in self._tombstones.get(rtype, {}).items()
            ]
        return iter(sorted((c for c in found if c.position > start), key=lambda c: c.position))

    def purge_tombstones(self, rtype: str, before: str) -> int:
        with self._lock:
            kept = self._tombstones.get(rtype, {})
            old = [id_ for id_, when in kept.items() if when < before]
            for id_ in old:
                del kept[id_]
        return len(old)

    def bulk_load(
        self, rtype: str, items: Iterable[tuple[dict[str, Any], Mapping[str, str | None]]]
    ) -> int:
        count = 0
        for doc, keys in items:
            self.create(rtype, doc, keys)
            count += 1
        return count

    def display_names(self, rtype: str, ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            rows = {id_: self._rows.get((rtype, id_)) for id_ in ids}
        names = {id_: display_name(json.loads(row.json)) for id_, row in rows.items() if row}
        return {id_: name for id_, name in names.items() if name is not None}

    # --- outbox -------------------------------------------------------------------------------
    def outbox_read(
        self, rtype: str, queue: str, limit: int, after: str | None = None
    ) -> list[OutboxEntry]:
        check_queue(queue)
        if not 0 < limit <= MAX_OUTBOX_READ:
            raise ValueError(f"one read returns 1 to {MAX_OUTBOX_READ} rows, not {limit}")
        with self._lock:
            rows = self._outbox.get((rtype, queue), {})
            keys = sorted(k for k in rows if after is None or k > after)[:limit]
            return [OutboxEntry(k, json.loads(rows[k][0]), rows[k][1]) for k in keys]

    def outbox_remove(
        self, rtype: str, queue: str, entries: Sequence[tuple[str, str | None]]
    ) -> int:
        check_queue(queue)
        removed = 0
        with self._lock:
            rows = self._outbox.get((rtype, queue), {})
            for key, etag in entries:
                found = rows.get(key)
                if found is not None and (etag is None or etag == found[1]):
                    del rows[key]
                    removed += 1
        return removed

    def outbox_put(self, rtype: str, items: Sequence[Outbox]) -> None:
        if any(o.key is None for o in items):
            raise ValueError("outbox_put writes rows with their keys given")
        rows = [(Outbox(o.queue, o.key, o.body, replace=True), _dump(o.body)) for o in items]
        with self._lock:
            self._write_outbox(rtype, rows, None, None)

    def _check_outbox(self, rtype: str, rows: Sequence[tuple[Outbox, str]]) -> None:
        """A new key that is taken fails the whole write, as the Table store's EGT does."""
        for o, _ in rows:
            if (
                not o.replace
                and o.key is not None
                and o.key in self._outbox.get((rtype, o.queue), {})
            ):
                raise Conflict(f"outbox row {o.queue}/{o.key} exists")

    def _write_outbox(
        self, rtype: str, rows: Sequence[tuple[Outbox, str]], previous: str | None, new: str | None
    ) -> None:
        for o, body in rows:
            key = o.key if o.key is not None else event_key(previous, new)
            self._outbox.setdefault((rtype, o.queue), {})[key] = (body, self._etag())

    # --- membership ---------------------------------------------------------------------------
    def list_members(
        self, group_id: str, limit: int | None = None, after: str | None = None
    ) -> list[Member]:
        with self._lock:
            members = sorted(self._members.get(group_id, {}).values(), key=lambda m: m.value)
        if after is not None:
            members = [m for m in members if m.value > after]
        return members if limit is None else members[: limit + 1]

    def has_member(self, group_id: str, member_id: str) -> bool:
        with self._lock:
            return member_id in self._members.get(group_id, {})

    def groups_of(self, member_id: str) -> list[str]:
        with self._lock:
            return sorted(self._groups_of.get(member_id, ()))

    # --- state --------------------------------------------------------------------------------
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None:
        with self._lock:
            found = self._state.get(name)
        if found is None:
            return None
        value: dict[str, Any] = json.loads(found[0])
        return value, found[1]

    def put_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        text = _dump(value)
        with self._lock:
            current = self._state.get(name)
            if etag is None and current is not None:
                raise Conflict(f"state {name!r} already exists")
            if etag is not None:
                if current is None:
                    raise NotFound(f"state {name!r} not found")
                if current[1] != etag:
                    raise PreconditionFailed(f"state {name!r} was modified since it was read")
            new_etag = self._etag()
            self._state[name] = (text, new_etag)
            return new_etag

    # --- internals (called with the lock held) -----------------------------------------------
    def _etag(self) -> str:
        return f'W/"{next(self._versions)}"'

    def _sorted_ids(self, rtype: str) -> list[str]:
        """The ids of a type in scan order, kept until a create or delete changes them."""
        ids = self._order.get(rtype)
        if ids is None:
            ids = self._order[rtype] = sorted(id_ for t, id_ in self._rows if t == rtype)
        return ids

    def _row(self, rtype: str, id_: str) -> _Row:
        row = self._rows.get((rtype, id_))
        if row is None:
            raise NotFound(f"{rtype} {id_} not found")
        return row

    def _check_unique(self, rtype: str, id_: str, keys: Mapping[str, str]) -> None:
        for index in UNIQUE_INDEXES[rtype]:
            owner = self._unique.get((rtype, index, keys[index])) if index in keys else None
            if owner is not None and owner != id_:
                raise Conflict(f"a {rtype} with this {index} already exists")

    def _add_index(self, rtype: str, id_: str, keys: Mapping[str, str]) -> None:
        for key, value in keys.items():
            index = index_of(key)  # x:emails.value#1 is a second value of x:emails.value
            if index in UNIQUE_INDEXES[rtype]:
                self._unique[rtype, index, value] = id_
            else:
                self._non_unique.setdefault((rtype, index, value), set()).add(id_)

    def _drop_index(self, rtype: str, id_: str, keys: Mapping[str, str]) -> None:
        for key, value in keys.items():
            index = index_of(key)
            if index in UNIQUE_INDEXES[rtype]:
                del self._unique[rtype, index, value]
            else:
                ids = self._non_unique.get((rtype, index, value), set())
                ids.discard(id_)
                if not ids:
                    self._non_unique.pop((rtype, index, value), None)

    def _stored(self, rtype: str, id_: str, row: _Row) -> Stored:
        return _stored(id_, row, self._members.get(id_, {}) if rtype == "Group" else None)

    def _add_member(self, group_id: str, member: Member) -> None:
        if (member.type, member.value) not in self._rows:
            return  # a group never lists a resource that does not exist (MemberChange)
        self._members.setdefault(group_id, {})[member.value] = member
        self._groups_of.setdefault(member.value, set()).add(group_id)

    def _remove_member(self, group_id: str, member_id: str) -> None:
        members = self._members.get(group_id, {})
        if members.pop(member_id, None) is None:
            return  # removing a non-member is not an error (MemberChange contract)
        groups = self._groups_of[member_id]
        groups.discard(group_id)
        if not groups:
            del self._groups_of[member_id]
        if not members:
            del self._members[group_id]


def _dump(value: Mapping[str, Any]) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"the resource is {size} bytes; the store holds at most {MAX_DOCUMENT_BYTES}"
        )
    return text


def _stored(id_: str, row: _Row, members: dict[str, Member] | None = None) -> Stored:
    inline = None
    if members is not None and len(members) <= INLINE_MEMBERS:
        inline = sorted(members.values(), key=lambda m: m.value)  # as list_members
    return Stored(
        id=id_, doc=marshal.loads(row.frozen), etag=row.etag, keys=dict(row.keys), members=inline
    )
