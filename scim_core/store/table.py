"""The Azure Table Storage :class:`~scim_core.store.Store` (Azurite locally).

Layout (DESIGN.md "Storage design"): one partition per resource type, so that one entity-group
transaction (EGT) writes a resource together with its index and membership rows, atomically.

    table users,  PK "User":   id|<id>                     the document
                               userName|<value>            unique index -> id
                               externalId|<value>|<id>     non-unique index (RowKey range query)
    table groups, PK "Group":  id|<id>, displayName|<value>, externalId|<value>|<id>
                               m|<groupId>|<memberId>      membership (type, display)
                               r|<memberId>|<groupId>      its reverse, for groups_of and deletes
    table state,  PK "state":  <name>                      a JSON value (sync checkpoints)

The entities are built in :mod:`~scim_core.store.documents` (documents, keys, index rows) and
:mod:`~scim_core.store.membership` (membership rows, inline member lists); EGTs are framed in
:mod:`~scim_core.store.batch`, errors translated in :mod:`~scim_core.store.errors`.

Every EGT that writes a group's membership rows also writes the group (its list, or "not
known"), so a list never outlives rows written after it. Deleting a member marks its groups "not
known" in the EGT that deletes its membership rows, without reading them; the next member change
of such a group reads its members once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.data.tables import TableEntity, TableServiceClient, UpdateMode

from scim_core.errors import NotFound, PreconditionFailed, ScimError
from scim_core.store.batch import Op, Results
from scim_core.store.documents import (
    MAX_BATCH_OPS,
    TABLES,
    Doc,
    Keys,
    doc_entity,
    doc_rk,
    encode_key,
    index_ops,
    stored_from,
    tombstone_op,
)
from scim_core.store.errors import translated
from scim_core.store.loading import load
from scim_core.store.membership import (
    LARGE,
    Inline,
    Pair,
    birth_ops,
    death_ops,
    inline_of,
    member_pair,
    member_rk,
    plan_members,
)
from scim_core.store.outbox import OutboxRows, outbox_ops
from scim_core.store.paging import MAX_PAGE_ROWS, first_page, range_rows
from scim_core.store.protocol import (
    CHANGE_INDEX,
    INLINE_MEMBERS,
    UNIQUE_INDEXES,
    Change,
    Member,
    MemberChange,
    Outbox,
    Stored,
    clean_keys,
    is_non_unique,
)
from scim_core.store.transport import RequestCounter, bound
from scim_core.store.writes import MEMBER_TRIES, NotAlive, without_members

_IF_MATCH = MatchConditions.IfNotModified
_NO_CHANGE = MemberChange()
#: Sends users' liveness rows alongside their document's transaction (``create``).
_BIRTHS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scim-births")


class TableStore(OutboxRows):
    """The Store over three tables of one storage account (layout in the module docstring)."""

    def __init__(
        self,
        service: TableServiceClient,
        *,
        table_prefix: str = "",
        counter: RequestCounter | None = None,
        tables_on_demand: bool = False,
    ) -> None:
        """``counter`` counts only if ``service`` was built with ``raw_request_hook=counter``, as
        :meth:`from_connection_string` and :meth:`from_endpoint` do. ``tables_on_demand``: the
        first write that finds a table missing creates the tables (Azurite, where nothing else
        does; in Azure, Bicep creates them), so that no request is spent on them at start."""
        self.service = service
        self.tables_on_demand = tables_on_demand
        self._tables_lock = threading.Lock()
        self.counter = counter or RequestCounter()
        self.table_prefix = table_prefix
        self.table_names = [table_prefix + name for name in ("users", "groups", "state")]
        users, groups, state = (service.get_table_client(name) for name in self.table_names)
        super().__init__({"users": users, "groups": groups, "state": state})

    @classmethod
    def from_connection_string(
        cls,
        conn_str: str,
        *,
        table_prefix: str = "",
        tables_on_demand: bool = False,
        **kwargs: Any,
    ) -> TableStore:
        counter = RequestCounter()
        bound(kwargs)
        service = TableServiceClient.from_connection_string(
            conn_str, raw_request_hook=counter, **kwargs
        )
        return cls(
            service, table_prefix=table_prefix, counter=counter, tables_on_demand=tables_on_demand
        )

    @classmethod
    def from_endpoint(
        cls, endpoint: str, credential: TokenCredential, *, table_prefix: str = "", **kwargs: Any
    ) -> TableStore:
        counter = RequestCounter()
        bound(kwargs)
        service = TableServiceClient(
            endpoint, credential=credential, raw_request_hook=counter, **kwargs
        )
        return cls(service, table_prefix=table_prefix, counter=counter)

    @classmethod
    def from_managed_identity(
        cls, endpoint: str, client_id: str | None = None, **kwargs: Any
    ) -> TableStore:
        """Azure: the Function App's managed identity (user-assigned when ``client_id`` is set)."""
        from azure.identity import ManagedIdentityCredential  # only Azure needs azure-identity

        credential = ManagedIdentityCredential(client_id=client_id)
        return cls.from_endpoint(endpoint, credential, **kwargs)

    @classmethod
    def from_operator_login(cls, endpoint: str, **kwargs: Any) -> TableStore:
        """An operator's command from their machine: ``DefaultAzureCredential`` (``az login``)."""
        from azure.identity import DefaultAzureCredential

        return cls.from_endpoint(endpoint, DefaultAzureCredential(), **kwargs)

    @property
    def request_count(self) -> int:
        return self.counter.count

    def create_tables(self) -> None:
        """Creates whichever of the three tables is missing. One query finds those that exist,
        so a process starting over existing tables (every start but the first) sends one
        request rather than three creates answered 409."""
        names = " or ".join(f"TableName eq @t{n}" for n in range(len(self.table_names)))
        params = {f"t{n}": name for n, name in enumerate(self.table_names)}
        with translated("tables"):
            existing = {t.name for t in self.service.query_tables(names, parameters=params)}
        for name in self.table_names:
            if name not in existing:
                with translated(f"table {name}"):
                    self.service.create_table_if_not_exists(name)

    def _create_missing_tables(self) -> bool:
        """For ``tables_on_demand``: creates whichever table is missing and says whether the
        failed write should be tried again (callers try again once)."""
        if not self.tables_on_demand:
            return False
        with self._tables_lock:  # concurrent first writes: one creates, the others find them
            self.create_tables()
        return True

    def close(self) -> None:
        self.service.close()

    # --- resources ----------------------------------------------------------------------------
    def create(
        self,
        rtype: str,
        doc: Doc,
        keys: Keys,
        members: Sequence[Member] = (),
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        id_, clean = str(doc["id"]), clean_keys(rtype, keys)
        if members and rtype != "Group":
            raise ValueError("only groups have members")
        entity, data = doc_entity(rtype, id_, doc, clean)
        index = index_ops(rtype, id_, {}, clean)
        unique = {m.value: m for m in members}
        base: list[Op] = [("create", entity, {}), *index]
        if rtype == "Group":
            base += birth_ops(id_, rtype)  # same partition: in the group's own EGT
        base += outbox_ops(rtype, outbox, None, clean.get(CHANGE_INDEX))
        births: Future[Results] | None = None
        if rtype != "Group":
            # A user's liveness rows live in another table: a second request, sent alongside the
            # document's (an id whose create then fails is one no client ever learns, so rows
            # left for it are inert). A user left without them (the request failed, or a crash)
            # gets them at its first membership (``_settle``).
            births = _BIRTHS.submit(self._submit, "groups", birth_ops(id_, rtype), id_, rtype)
        try:
            return self._create(rtype, id_, data, clean, base, unique)
        finally:
            if births is not None:
                with suppress(ScimError):
                    births.result()

    def _create(
        self,
        rtype: str,
        id_: str,
        data: bytes,
        clean: dict[str, str],
        base: list[Op],
        unique: dict[str, Member],
    ) -> Stored:
        for _ in range(MEMBER_TRIES):
            pairs = [member_pair("upsert", id_, m) for m in unique.values()]
            after = list(unique.values()) if rtype == "Group" else None
            try:
                stored = self._write_resource(rtype, id_, data, clean, list(base), pairs, after)
            except NotAlive as exc:
                dead = self._settle(exc.members)
                if not exc.first:  # the group exists, with part of its members: finish
                    alive = [m for m in unique.values() if m.value not in dead]
                    return self._finish_members(id_, MemberChange(replace_all=alive))
                unique = {k: m for k, m in unique.items() if k not in dead}
                continue
            return stored
        raise PreconditionFailed(f"members of {rtype} {id_} kept changing while it was written")

    def get(self, rtype: str, id: str) -> Stored:
        with translated(f"{rtype} {id}"):
            entity = self._table(rtype).get_entity(rtype, doc_rk(id))
        inline = inline_of(entity)
        return self._remember(rtype, stored_from(entity, _listed(inline)), inline)

    def replace(
        self,
        rtype: str,
        doc: Doc,
        keys: Keys,
        etag: str,
        members: MemberChange = _NO_CHANGE,
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        for _ in range(MEMBER_TRIES):
            try:
                return self._replace(rtype, doc, keys, etag, members, outbox)
            except NotAlive as exc:
                dead = self._settle(exc.members)
                members = without_members(members, dead)
                if not exc.first:  # the document was written with part of the change: finish
                    return self._finish_members(str(doc["id"]), members)
        raise PreconditionFailed(f"members of {rtype} {doc['id']} kept changing while written")

    def _replace(
        self,
        rtype: str,
        doc: Doc,
        keys: Keys,
        etag: str,
        members: MemberChange,
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        id_, clean = str(doc["id"]), clean_keys(rtype, keys)
        if not members.empty and rtype != "Group":
            raise ValueError("only groups have members")
        entity, data = doc_entity(rtype, id_, doc, clean)
        old_keys, _, inline = self._keys_at(rtype, id_, etag)
        pairs: list[Pair] = []
        after: Inline = inline
        if not members.empty:
            if inline is None and members.replace_all is None:
                inline = self._learn_members(id_)  # not known: one bounded read, then kept
            pairs, known = plan_members(id_, members, inline, self.list_members)
            after = LARGE if known is None else known
        options = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": _IF_MATCH}
        base = [("update", entity, options), *index_ops(rtype, id_, old_keys, clean)]
        base += outbox_ops(rtype, outbox, old_keys.get(CHANGE_INDEX), clean.get(CHANGE_INDEX))
        return self._write_resource(rtype, id_, data, clean, base, pairs, after)

    def _finish_members(self, group_id: str, change: MemberChange) -> Stored:
        """Applies ``change`` again on the group's current version, after a multi-EGT write
        stopped part-way at a member that is not alive (member upserts are idempotent)."""
        for _ in range(MEMBER_TRIES):
            current = self.get("Group", group_id)
            try:
                return self._replace("Group", current.doc, current.keys, current.etag, change)
            except NotAlive as exc:
                change = without_members(change, self._settle(exc.members))
            except PreconditionFailed:
                continue
        raise PreconditionFailed(f"members of Group {group_id} kept changing while written")

    def delete(
        self, rtype: str, id: str, etag: str | None = None, outbox: Sequence[Outbox] = ()
    ) -> None:
        """Deletes a resource and its memberships, in an order that never lets a group list a
        resource that no longer exists, whatever runs concurrently and wherever a crash stops
        it:

        1. its liveness row goes (:mod:`~scim_core.store.membership`): no member add naming it
           can commit after this, and it cannot be revived;
        2. the membership sweep: every row an add committed before step 1 is found and deleted;
        3. its document and index rows go (conditional on the version read, so a concurrent
           rename cannot orphan index rows: retried with the fresh keys).

        A crash after 1 or 2 leaves the resource in place, with fewer memberships and unable to
        join a group, until the DELETE is retried (Entra retries a failed request); at no point
        does a group list a resource that is gone.

        With the caller's ``etag`` (If-Match), a 412 at step 3 must change nothing: the
        resource is revived and the memberships the sweep removed are written back (a member's
        ``display`` in another group is not kept: it is not read before the sweep). A DELETE of
        a resource that is already gone still sweeps any membership row naming it (rows left
        by a crash of an older version of this code) before it answers 404.
        """
        what = f"{rtype} {id}"
        try:
            keys, current, _ = self._keys_at(rtype, id, etag)
        except NotFound:
            if self._sweep(rtype, id, what):
                raise NotFound(f"{what} not found (its memberships were removed)") from None
            raise
        self._submit("groups", death_ops(id, rtype), what)
        swept = self._sweep(rtype, id, what)
        while True:
            row = {"PartitionKey": rtype, "RowKey": doc_rk(id)}
            doc: Op = ("delete", row, {"etag": current, "match_condition": _IF_MATCH})
            try:
                # The tombstone goes with the document: a change poll sees the delete.
                ops = [doc, *index_ops(rtype, id, keys, {}), tombstone_op(rtype, id)]
                ops += outbox_ops(rtype, outbox, keys.get(CHANGE_INDEX), None)
                self._write(TABLES[rtype], ops, [], what)
                break
            except PreconditionFailed:
                if etag is not None:
                    self._submit("groups", birth_ops(id, rtype)[:1], what)  # revive: it stays
                    self._restore(swept, what)
                    raise
            keys, current, _ = self._keys_at(rtype, id, None)

    def lookup(self, rtype: str, index: str, value: str) -> list[str]:
        table, what = self._table(rtype), f"{rtype} {index}"
        if index in UNIQUE_INDEXES[rtype]:
            try:
                with translated(what):
                    row = table.get_entity(rtype, f"{index}|{encode_key(value)}", select=["id"])
            except NotFound:
                return []
            return [row["id"]]
        if is_non_unique(rtype, index) and "#" not in index:
            with translated(what):
                return [
                    r["id"]
                    for r in range_rows(table, rtype, f"{index}|{encode_key(value)}|", ["id"])
                ]
        raise ValueError(f"{rtype} has no index {index!r}")

    def scan(
        self, rtype: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Stored]:
        table = self._table(rtype)
        with translated(f"{rtype} scan"):
            for entity in range_rows(table, rtype, "id|", None, after=after, page_size=page_size):
                stored = stored_from(entity, _listed(inline_of(entity)))
                stored.position = entity["RowKey"]
                yield stored

    def positions(self, rtype: str, after: str | None = None) -> Iterator[str]:
        # Key-only: a row comes back as its RowKey and ETag, ~100 bytes instead of the
        # document, so skipping costs one request per 1,000 rows and little decoding.
        with translated(f"{rtype} scan"):
            for row in range_rows(self._table(rtype), rtype, "id|", ["RowKey"], after=after):
                yield row["RowKey"]

    def changes(
        self, rtype: str, since: str, after: str | None = None, page_size: int | None = None
    ) -> Iterator[Change]:
        # Two ordered ranges, merged by their common "<stamp>|<id>" tail: the change index
        # (lm|...) and the tombstones (lt|...). A position is that tail.
        table, start = self._table(rtype), after if after is not None else since
        with translated(f"{rtype} changes"):
            live = (
                Change(row["RowKey"][3:], row["id"], row["RowKey"][3:].split("|")[0])
                for row in range_rows(
                    table, rtype, "lm|", ["RowKey", "id"], after="lm|" + start, page_size=page_size
                )
            )
            gone = (
                Change(row["RowKey"][3:], row["id"], row["RowKey"][3:].split("|")[0], True)
                for row in range_rows(
                    table, rtype, "lt|", ["RowKey", "id"], after="lt|" + start, page_size=page_size
                )
            )
            yield from heapq.merge(live, gone, key=lambda c: c.position)

    def purge_tombstones(self, rtype: str, before: str) -> int:
        table, what = TABLES[rtype], f"{rtype} tombstones"
        with translated(what):
            rows = range_rows(self._table(rtype), rtype, "lt|", ["RowKey"])
            old = [
                rk
                for rk in itertools.takewhile(
                    lambda rk: rk[3:] < before, (row["RowKey"] for row in rows)
                )
            ]
        for start in range(0, len(old), MAX_BATCH_OPS):
            ops: list[Op] = [
                ("delete", {"PartitionKey": rtype, "RowKey": rk}, {})
                for rk in old[start : start + MAX_BATCH_OPS]
            ]
            self._submit(table, ops, what)
        return len(old)

    def bulk_load(self, rtype: str, items: Iterable[tuple[Doc, Keys]], *, workers: int = 4) -> int:
        """Packs several resources into each EGT and keeps ``workers`` EGTs in flight."""
        table, what = TABLES[rtype], f"{rtype} bulk load"
        return load(
            rtype,
            items,
            lambda ops: self._submit(table, ops, what, rtype),
            lambda ops: self._submit("groups", ops, what),
            workers,
        )

    # --- membership ---------------------------------------------------------------------------
    def list_members(
        self, group_id: str, limit: int | None = None, after: str | None = None
    ) -> list[Member]:
        with translated(f"members of Group {group_id}"):
            prefix = f"m|{encode_key(group_id)}|"
            # Only what a Member holds: the SDK's per-entity decoding (keys, Timestamp) is most
            # of the cost of a page, which a 1,000-row read halves (bench/README.md "Fixes").
            select = ["member", "type", "display"]
            rows: Iterable[TableEntity]
            if after is not None:
                if limit is not None and limit + 1 > MAX_PAGE_ROWS:
                    raise ValueError(f"one request reads at most {MAX_PAGE_ROWS} rows")
                size = None if limit is None else limit + 1
                rows = range_rows(
                    self._tables["groups"],
                    "Group",
                    prefix,
                    select,
                    after=member_rk(group_id, after),
                    page_size=size,
                )
                if size is not None:
                    rows = itertools.islice(rows, size)
            elif limit is None:
                rows = range_rows(self._tables["groups"], "Group", prefix, select)
            else:
                # One request: the first page only, sized to tell "more than limit" apart.
                rows = first_page(self._tables["groups"], "Group", prefix, limit + 1, select)
            return [Member(row["member"], row["type"], row.get("display")) for row in rows]

    def has_member(self, group_id: str, member_id: str) -> bool:
        return self._exists("groups", member_rk(group_id, member_id))

    def groups_of(self, member_id: str) -> list[str]:
        with translated(f"groups of {member_id}"):
            prefix = f"r|{encode_key(member_id)}|"
            return [
                row["group"]
                for row in range_rows(self._tables["groups"], "Group", prefix, ["group"])
            ]

    # --- internals ----------------------------------------------------------------------------
    def _learn_members(self, group_id: str) -> Inline:
        page = self.list_members(group_id, limit=INLINE_MEMBERS)
        return page if len(page) <= INLINE_MEMBERS else LARGE


def _listed(inline: Inline) -> list[Member] | None:
    return inline if isinstance(inline, list) else None
