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

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from scim_core.errors import NotFound, PreconditionFailed
from scim_core.store.batch import Op, Results, transact
from scim_core.store.documents import (
    MAX_BATCH_OPS,
    TABLES,
    Doc,
    Keys,
    clean_keys,
    doc_entity,
    doc_rk,
    encode_key,
    index_ops,
    pack,
    stored_from,
    unpack,
)
from scim_core.store.errors import TableMissing, translated
from scim_core.store.loading import load
from scim_core.store.membership import (
    LARGE,
    Inline,
    Pair,
    forget_inline,
    inline_of,
    may_be_gone,
    member_order,
    member_pair,
    member_rk,
    plan_members,
    with_inline,
)
from scim_core.store.paging import first_page, range_rows
from scim_core.store.protocol import (
    INLINE_MEMBERS,
    NON_UNIQUE_INDEXES,
    UNIQUE_INDEXES,
    Member,
    MemberChange,
    Stored,
)
from scim_core.store.transport import HttpClientTransport, RequestCounter

_PARTITIONS = {"users": "User", "groups": "Group"}
_IF_MATCH = MatchConditions.IfNotModified
_NO_CHANGE = MemberChange()


class TableStore:
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
        self._tables = {"users": users, "groups": groups, "state": state}
        # Index keys of versions this process has read or written, by etag. A version's keys never
        # change, so replace/delete of a version just read need not read it again.
        self._known: OrderedDict[tuple[str, str, str], tuple[dict[str, str], Inline]] = (
            OrderedDict()
        )
        self._known_lock = threading.Lock()

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
        kwargs.setdefault("transport", HttpClientTransport())
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
        kwargs.setdefault("transport", HttpClientTransport())
        service = TableServiceClient(
            endpoint, credential=credential, raw_request_hook=counter, **kwargs
        )
        return cls(service, table_prefix=table_prefix, counter=counter)

    @classmethod
    def from_managed_identity(cls, endpoint: str, client_id: str | None = None) -> TableStore:
        """Azure: the Function App's managed identity (user-assigned when ``client_id`` is set)."""
        from azure.identity import ManagedIdentityCredential  # only Azure needs azure-identity

        return cls.from_endpoint(endpoint, ManagedIdentityCredential(client_id=client_id))

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
    def create(self, rtype: str, doc: Doc, keys: Keys, members: Sequence[Member] = ()) -> Stored:
        id_, clean = str(doc["id"]), clean_keys(rtype, keys)
        if members and rtype != "Group":
            raise ValueError("only groups have members")
        entity, data = doc_entity(rtype, id_, doc, clean)
        index = index_ops(rtype, id_, {}, clean)
        unique = {m.value: m for m in members}
        pairs = [member_pair("upsert", id_, m) for m in unique.values()]
        after = list(unique.values()) if rtype == "Group" else None
        base: list[Op] = [("create", entity, {}), *index]
        return self._write_resource(rtype, id_, data, clean, base, pairs, after)

    def get(self, rtype: str, id: str) -> Stored:
        with translated(f"{rtype} {id}"):
            entity = self._table(rtype).get_entity(rtype, doc_rk(id))
        inline = inline_of(entity)
        return self._remember(rtype, stored_from(entity, _listed(inline)), inline)

    def replace(
        self, rtype: str, doc: Doc, keys: Keys, etag: str, members: MemberChange = _NO_CHANGE
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
        return self._write_resource(rtype, id_, data, clean, base, pairs, after)

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

    def delete(self, rtype: str, id: str, etag: str | None = None) -> None:
        what = f"{rtype} {id}"
        while True:
            keys, current, _ = self._keys_at(rtype, id, etag)
            row = {"PartitionKey": rtype, "RowKey": doc_rk(id)}
            doc: Op = ("delete", row, {"etag": current, "match_condition": _IF_MATCH})
            try:
                # Conditional even when the caller's etag is None, so that a concurrent rename
                # cannot leave its new index rows orphaned: retry with the fresh keys instead.
                self._write(TABLES[rtype], [doc, *index_ops(rtype, id, keys, {})], [], what)
                break
            except PreconditionFailed:
                if etag is not None:
                    raise
        # After the document, so a failed etag check never costs memberships. The price: a crash
        # right here leaves membership rows naming a resource that no longer exists.
        own = [(id, m.value) for m in self.list_members(id)] if rtype == "Group" else []
        # dict.fromkeys: a group that is its own member shows up in both lists, and an EGT may
        # not touch one row twice.
        links = dict.fromkeys([*own, *((group_id, id) for group_id in self.groups_of(id))])
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

    def lookup(self, rtype: str, index: str, value: str) -> list[str]:
        table, what = self._table(rtype), f"{rtype} {index}"
        if index in UNIQUE_INDEXES[rtype]:
            try:
                with translated(what):
                    row = table.get_entity(rtype, f"{index}|{encode_key(value)}", select=["id"])
            except NotFound:
                return []
            return [row["id"]]
        if index in NON_UNIQUE_INDEXES[rtype]:
            with translated(what):
                return [
                    r["id"]
                    for r in range_rows(table, rtype, f"{index}|{encode_key(value)}|", ["id"])
                ]
        raise ValueError(f"{rtype} has no index {index!r}")

    def scan(self, rtype: str) -> Iterator[Stored]:
        with translated(f"{rtype} scan"):
            for entity in range_rows(self._table(rtype), rtype, "id|", None):
                yield stored_from(entity, _listed(inline_of(entity)))

    def bulk_load(self, rtype: str, items: Iterable[tuple[Doc, Keys]], *, workers: int = 4) -> int:
        """Packs several resources into each EGT and keeps ``workers`` EGTs in flight."""
        table, what = TABLES[rtype], f"{rtype} bulk load"
        return load(rtype, items, lambda ops: self._submit(table, ops, what, rtype), workers)

    # --- membership ---------------------------------------------------------------------------
    def list_members(self, group_id: str, limit: int | None = None) -> list[Member]:
        with translated(f"members of Group {group_id}"):
            prefix = f"m|{encode_key(group_id)}|"
            # Only what a Member holds: the SDK's per-entity decoding (keys, Timestamp) is most
            # of the cost of a page, which a 1,000-row read halves (bench/README.md "Fixes").
            select = ["member", "type", "display"]
            if limit is None:
                rows: Iterable[TableEntity] = range_rows(
                    self._tables["groups"], "Group", prefix, select
                )
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

    # --- state --------------------------------------------------------------------------------
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None:
        try:
            with translated(f"state {name!r}"):
                entity = self._tables["state"].get_entity("state", encode_key(name))
        except NotFound:
            return None
        value: dict[str, Any] = json.loads(unpack(entity))
        return value, str(entity.metadata["etag"])

    def put_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        entity = {
            "PartitionKey": "state",
            "RowKey": encode_key(name),
            "name": name,
            **pack(value)[0],
        }
        state = self._tables["state"]
        for attempt in (1, 2):
            try:
                with translated(f"state {name!r}"):
                    if etag is None:
                        meta = state.create_entity(entity)
                    else:
                        meta = state.update_entity(
                            entity, UpdateMode.REPLACE, etag=etag, match_condition=_IF_MATCH
                        )
                return str(meta["etag"])
            except TableMissing:
                if attempt == 2 or not self._create_missing_tables():
                    raise
        raise AssertionError("unreachable")

    # --- internals ----------------------------------------------------------------------------
    def _table(self, rtype: str) -> TableClient:
        if rtype not in TABLES:
            raise ValueError(f"unknown resource type {rtype!r}")
        return self._tables[TABLES[rtype]]

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

    def _learn_members(self, group_id: str) -> Inline:
        page = self.list_members(group_id, limit=INLINE_MEMBERS)
        return page if len(page) <= INLINE_MEMBERS else LARGE

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
        rest packed in further EGTs of up to 100 operations, so k member changes cost ceil(k/49)
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
        first = self._submit(table, chunks[0], what, conflict)
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
            except NotFound:
                gone = {
                    i
                    for i, op in enumerate(ops)
                    if may_be_gone(op) and not self._exists(table, op[1]["RowKey"])
                }
                if not gone:
                    raise
                ops = [op for i, op in enumerate(ops) if i not in gone]
        return []

    def _exists(self, table: str, row_key: str) -> bool:
        try:
            with translated(row_key):
                self._tables[table].get_entity(_PARTITIONS[table], row_key, select=["RowKey"])
        except NotFound:
            return False
        return True


def _listed(inline: Inline) -> list[Member] | None:
    return inline if isinstance(inline, list) else None
