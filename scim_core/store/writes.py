"""Entity-group transactions of the Table store: packing a write into EGTs, sending one with its
errors translated, the liveness checks of member adds, and the cache of versions just read.

:class:`Writes` is the part of :class:`~scim_core.store.table.TableStore` that talks to storage
one EGT at a time; the store's public operations (table.py) build the operations.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode

from scim_core.errors import Conflict, NotFound, PreconditionFailed
from scim_core.store.batch import Op, Results, transact
from scim_core.store.documents import MAX_BATCH_OPS, TABLES, doc_rk
from scim_core.store.errors import RowMissing, TableMissing, translated
from scim_core.store.membership import (
    LARGE,
    Inline,
    Pair,
    alive_rk,
    birth_ops,
    forget_inline,
    inline_of,
    is_alive_check,
    may_be_gone,
    member_order,
    member_pair,
    with_inline,
)
from scim_core.store.protocol import INLINE_MEMBERS, Member, MemberChange, Stored

_PARTITIONS = {"users": "User", "groups": "Group"}
_IF_MATCH = MatchConditions.IfNotModified


class Writes:
    """The storage side of a TableStore's writes (see the module docstring)."""

    def __init__(self, tables: dict[str, TableClient]) -> None:
        self._tables = tables
        # Index keys of versions this process has read or written, by etag. A version's keys never
        # change, so replace/delete of a version just read need not read it again.
        self._known: OrderedDict[tuple[str, str, str], tuple[dict[str, str], Inline]] = (
            OrderedDict()
        )
        self._known_lock = threading.Lock()

    def list_members(
        self, group_id: str, limit: int | None = None, after: str | None = None
    ) -> list[Member]:
        raise NotImplementedError

    def groups_of(self, member_id: str) -> list[str]:
        raise NotImplementedError

    def _create_missing_tables(self) -> bool:
        """Whether a missing table was created, so the failed write may be tried again."""
        return False

    def _table(self, rtype: str) -> TableClient:
        if rtype not in TABLES:
            raise ValueError(f"unknown resource type {rtype!r}")
        return self._tables[TABLES[rtype]]

    def _settle(self, members: Sequence[tuple[str, str]]) -> set[str]:
        """Which of these (id, type) are dead. One not alive but whose document exists and that
        was never born in the liveness scheme (created before it) is given its liveness rows."""
        dead: set[str] = set()
        for member_id, member_type in members:
            if self._exists("groups", alive_rk(member_id)):
                continue  # alive again: another writer settled it
            table = TABLES.get(member_type)
            if table is None or not self._exists(table, doc_rk(member_id)):
                dead.add(member_id)
                continue
            try:
                self._submit("groups", birth_ops(member_id, member_type), f"liveness {member_id}")
            except Conflict:
                # Born before: it is being (or was) deleted, unless a concurrent settle won.
                if not self._exists("groups", alive_rk(member_id)):
                    dead.add(member_id)
        return dead

    def _remember(self, rtype: str, stored: Stored, inline: Inline = None) -> Stored:
        """Keeps the version's index keys and inline members (a version's never change), and
        hands the inline members to the caller as ``Stored.members``."""
        if isinstance(inline, list):
            stored.members = list(inline)
        with self._known_lock:
            self._known[rtype, stored.id, stored.etag] = (dict(stored.keys), inline)
            while len(self._known) > 10_000:
                self._known.popitem(last=False)
        return stored

    def _keys_at(
        self, rtype: str, id_: str, etag: str | None
    ) -> tuple[dict[str, str], str, Inline]:
        """The index keys and inline members of the resource at ``etag`` (None: the current
        version), and its etag."""
        if etag is not None:
            with self._known_lock:
                known = self._known.get((rtype, id_, etag))
            if known is not None:
                return known[0], etag, known[1]
        select = ["keys", "mi", "ml"] if rtype == "Group" else ["keys"]
        with translated(f"{rtype} {id_}"):
            entity = self._table(rtype).get_entity(rtype, doc_rk(id_), select=select)
        current = str(entity.metadata["etag"])
        if etag is not None and etag != current:  # fail before writing anything
            raise PreconditionFailed(f"{rtype} {id_} was modified since it was read")
        keys: dict[str, str] = json.loads(entity["keys"])
        return keys, current, inline_of(entity)

    def _write(
        self,
        table: str,
        base: list[Op],
        pairs: Sequence[Pair],
        what: str,
        conflict: str | None = None,
        group: str | None = None,
        finish: dict[str, Any] | None = None,
    ) -> tuple[Results, str | None]:
        """``base`` and as many units (a membership's two rows, ...) as fit in the first EGT, the
        rest packed in further EGTs of up to 100 operations, so k member changes cost ceil(k/33)
        EGTs whatever the group's size. Returns the first EGT's per-operation results, and the
        group's etag after ``finish`` if that landed.

        ``group``: the id of the group whose rows these are (``base[0]`` writes its document).
        Each further EGT then also writes the group: its members "not known", or in the last
        EGT ``finish`` (the inline list), conditional on the version the previous EGT left. So
        a list that another writer keeps while this change is half done (it read part of the
        rows) never outlives the rest of the rows: the EGT that writes them overwrites it."""
        room = MAX_BATCH_OPS - (1 if group is not None else 0)
        chunks: list[list[Op]] = [list(base)]
        for unit in pairs:
            if len(chunks[-1]) + len(unit) > (MAX_BATCH_OPS if len(chunks) == 1 else room):
                chunks.append([])
            chunks[-1].extend(unit)
        try:
            first = self._submit(table, chunks[0], what, conflict)
        except NotAlive as exc:
            exc.first = True
            raise
        if group is None:
            for chunk in chunks[1:]:
                self._submit(table, chunk, what)
            return first, None
        etag = str(first[0]["etag"]) if first else None
        for n, chunk in enumerate(chunks[1:], start=2):
            if n == len(chunks) and finish is not None and etag is not None:
                entity = {"PartitionKey": "Group", "RowKey": doc_rk(group), **finish}
                options = {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": _IF_MATCH}
                try:
                    return first, str(
                        self._submit(table, [("update", entity, options), *chunk], what)[0]["etag"]
                    )
                except PreconditionFailed:
                    pass  # the group changed since the previous EGT: "not known" instead
            results = self._submit(table, [forget_inline(group), *chunk], what)
            etag = str(results[0]["etag"]) if results else None
        return first, None

    def _submit(self, table: str, ops: list[Op], what: str, conflict: str | None = None) -> Results:
        """One EGT. Deleting a membership row that is already gone (or marking a group that is
        gone) must not fail the rest, so on a 404 those rows are dropped (one point read each)
        and the EGT is resent."""
        created = False
        while ops:
            try:
                with translated(what, ops, conflict):
                    return transact(self._tables[table], ops)
            except TableMissing:
                if created or not self._create_missing_tables():
                    raise
                created = True
            except NotFound as exc:
                self._check_alive(table, ops, exc)
                gone = {
                    i
                    for i, op in enumerate(ops)
                    if may_be_gone(op) and not self._exists(table, op[1]["RowKey"])
                }
                if not gone:
                    raise
                ops = [op for i, op in enumerate(ops) if i not in gone]
        return []

    def _check_alive(self, table: str, ops: list[Op], exc: NotFound) -> None:
        """Raises :class:`NotAlive` when the EGT failed on a member's liveness row."""
        index = exc.index if isinstance(exc, RowMissing) else None
        if index is not None and not (index < len(ops) and is_alive_check(ops[index])):
            return
        missing = [
            (str(op[1]["id"]), str(op[1]["type"]))
            for op in ops
            if is_alive_check(op) and not self._exists(table, op[1]["RowKey"])
        ]
        if missing:
            raise NotAlive(missing)

    def _exists(self, table: str, row_key: str) -> bool:
        try:
            with translated(row_key):
                self._tables[table].get_entity(_PARTITIONS[table], row_key, select=["RowKey"])
        except NotFound:
            return False
        return True

    def _write_resource(
        self,
        rtype: str,
        id_: str,
        data: bytes,
        keys: dict[str, str],
        base: list[Op],
        pairs: list[Pair],
        after: Inline,
    ) -> Stored:
        """Writes a resource (``base[0]`` is its document) with its index rows and membership
        pairs, keeping ``after`` (the group's members afterwards, if known) inline. A change that
        needs several EGTs writes the document first with its members "not known", and the list
        in the last EGT, conditional on that first write: if a later EGT never lands, or the
        group changed in between, the members stay "not known" rather than wrong."""
        if isinstance(after, list):
            after = LARGE if len(after) > INLINE_MEMBERS else sorted(after, key=member_order)
        document = base[0][1]
        single = len(base) + sum(len(p) for p in pairs) <= MAX_BATCH_OPS
        finish: dict[str, Any] | None = None
        finished_inline: Inline = None  # what the last EGT keeps, if its write lands
        if isinstance(after, list) and not single:
            with_list, finished_inline = with_inline(document, after)
            if finished_inline is not None:
                finish = {"mi": with_list["mi"]}
            after = None
        entity, kept_inline = with_inline(document, after)
        base[0] = (base[0][0], entity, base[0][2])
        what = f"{rtype} {id_}"
        # A group that ends up large keeps no list, so no learner relies on its rows mid-change.
        group = id_ if rtype == "Group" and after != LARGE else None
        first, finished = self._write(TABLES[rtype], base, pairs, what, rtype, group, finish)
        stored = Stored(id_, json.loads(data), finished or first[0]["etag"], keys)
        return self._remember(rtype, stored, finished_inline if finished else kept_inline)

    def _sweep(self, rtype: str, id: str, what: str) -> list[tuple[str, Member]]:
        """Deletes every membership row naming the resource ``id`` (as member, and as a group
        its own); returns the memberships removed. One range read each way when there are
        none."""
        own = [(id, m) for m in self.list_members(id)] if rtype == "Group" else []
        of = [(group_id, Member(id, rtype)) for group_id in self.groups_of(id)]
        # By (group, member): a group that is its own member shows up in both lists, and an EGT
        # may not touch one row twice.
        links = {(group_id, m.value): m for group_id, m in [*own, *of]}
        units: list[Pair] = []
        for group_id, member_id in links:
            unit = member_pair("delete", group_id, member_id)
            if member_id == id and group_id != id:
                # The group loses a member without a write of its own: whatever it kept inline
                # is stale. Marked "not known" in the same EGT, without reading the group (its
                # next member change reads its members once); this also changes its ETag.
                unit = (forget_inline(group_id), *unit)
            units.append(unit)
        self._write("groups", [], units, f"memberships of {what}")
        return [(group_id, m) for (group_id, _), m in links.items()]

    def _restore(self, swept: list[tuple[str, Member]], what: str) -> None:
        """Writes back the memberships a sweep removed (a refused If-Match delete), each group's
        inline list marked "not known" in every EGT that writes its rows. Without liveness
        checks: the resource was just revived, and its own members were members a moment ago."""
        by_group: dict[str, list[Pair]] = {}
        for group_id, member in swept:
            by_group.setdefault(group_id, []).append(member_pair("upsert", group_id, member)[-2:])
        single = [(forget_inline(g), *units[0]) for g, units in by_group.items() if len(units) == 1]
        self._write("groups", [], single, f"memberships of {what}")
        for group_id, units in by_group.items():
            if len(units) > 1:
                base: list[Op] = [forget_inline(group_id)]
                self._write("groups", base, units, f"members of {what}", group=group_id)


#: A member write whose members keep dying or reviving is tried at most this many times.
MEMBER_TRIES = 3


class NotAlive(Exception):
    """An EGT failed because members were not alive (deleted, or never existed). ``first``: the
    failing EGT was the first of the write (then nothing was written)."""

    def __init__(self, members: list[tuple[str, str]]) -> None:
        super().__init__(f"members not alive: {[m for m, _ in members]}")
        self.members = members
        self.first = False


def without_members(change: MemberChange, dead: set[str]) -> MemberChange:
    if not dead:
        return change
    if change.replace_all is not None:
        return MemberChange(replace_all=[m for m in change.replace_all if m.value not in dead])
    return MemberChange(add=[m for m in change.add if m.value not in dead], remove=change.remove)
