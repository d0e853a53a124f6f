"""The Azure Table Storage :class:`~scim_core.store.Store` (Azurite locally).

The storage adapter is this module with table_batch (EGT framing), table_errors (every Azure
error translated to a SCIM error) and transport (HTTP): the only modules of scim_core that import
``azure.*``.

Layout (DESIGN.md "Storage design"): one partition per resource type, so that one entity-group
transaction (EGT) writes a resource together with its index and membership rows, atomically.

    table users,  PK "User":   id|<id>                     the document
                               userName|<value>            unique index -> id
                               externalId|<value>|<id>     non-unique index (RowKey range query)
    table groups, PK "Group":  id|<id>, displayName|<value>, externalId|<value>|<id>
                               m|<groupId>|<memberId>      membership (type, display)
                               r|<memberId>|<groupId>      its reverse, for groups_of and deletes
    table state,  PK "state":  <name>                      a JSON value (sync checkpoints)

A group's document entity also says what is known of its members (Stored.members): ``mi``, the
members as a JSON list while there are at most INLINE_MEMBERS of them; ``ml`` true when there
are more; neither (or ``mi`` = ``~``) when not known. Every EGT that writes a group's
membership rows also writes the group (its list, or "not known"), so a list never outlives rows
written after it. Deleting a member marks its groups "not known" in the EGT that deletes its
membership rows, without reading them; the next member change of such a group reads its
members once.

Every ``<...>`` goes through :func:`encode_key`: keys may not contain ``/ \\ # ?`` or control
characters, and Entra guest UPNs contain ``#EXT#``. Documents share the ``id|`` prefix, so
``scan`` is a RowKey range that never reads index or membership rows. A document is stored as
compact UTF-8 JSON split over *binary* properties ``d0, d1, ...``: string properties count UTF-16
(two bytes a character), which would halve the largest document the 1 MiB entity limit allows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineRequest
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from scim_core.errors import NotFound, PayloadTooLarge, PreconditionFailed
from scim_core.store import (
    INLINE_MEMBERS,
    NON_UNIQUE_INDEXES,
    UNIQUE_INDEXES,
    Member,
    MemberChange,
    Stored,
)
from scim_core.table_batch import Op, Results, transact
from scim_core.table_errors import TableMissing, error_code, translated
from scim_core.transport import HttpClientTransport

MAX_DOCUMENT_BYTES = 1_000_000  # == scim_core.memory.MAX_DOCUMENT_BYTES (contract-tested)
MAX_ENTITY_BYTES = 1024 * 1024
CHUNK_BYTES = 64_000  # a binary property holds at most 64 KiB
MAX_STRING_CHARS = 32_000  # a string property holds at most 64 KiB of UTF-16
MAX_BATCH_OPS = 100  # an EGT holds <= 100 operations; Azurite accepts more, Azure does not
MAX_BATCH_BYTES = 3 * 1024 * 1024  # the EGT payload limit is 4 MiB; binary travels as base64
MAX_PAGE_ROWS = 1000  # a query returns at most 1,000 entities per response
MAX_KEY_CHARS = 700  # a RowKey is <= 1 KiB; longer values are keyed by their digest
INLINE_BYTES = 24_000  # the largest inline member list kept on a group's document entity
_LARGE = "large"  # inline state of a group known to have more than INLINE_MEMBERS members
_UNKNOWN_MARK = b"~"  # ``mi`` of a group whose inline list was invalidated
_TABLES = {"User": "users", "Group": "groups"}
_PARTITIONS = {"users": "User", "groups": "Group"}
_IF_MATCH = MatchConditions.IfNotModified
_NO_CHANGE = MemberChange()

Doc = dict[str, Any]
Keys = Mapping[str, str | None]
Pair = tuple[Op, ...]  # ops that go in the same EGT: a membership's forward and reverse row
# What the store knows of a group's members with its document: the list (at most
# INLINE_MEMBERS), _LARGE, or None (not known: read the membership rows).
Inline = list[Member] | str | None


class RequestCounter:
    """Counts HTTP requests sent to storage (tests and benchmarks assert on storage cost).

    Installed as the client's ``raw_request_hook``: azure-core's CustomHookPolicy is in the policy
    list a TableServiceClient hands to the TableClients it makes, whereas ``per_call_policies``
    reach only the service client's own pipeline. It runs after the retry policy, so every
    attempt counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, request: PipelineRequest[Any]) -> None:
        with self._lock:
            self.count += 1


def encode_key(value: str) -> str:
    """A RowKey-safe encoding: unpadded base64url of the UTF-8 (so never ``|``), or ``~`` and the
    SHA-256 when that would exceed MAX_KEY_CHARS (``~`` is not in the base64url alphabet)."""
    raw = value.encode("utf-8", "surrogatepass")
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return encoded if len(encoded) <= MAX_KEY_CHARS else "~" + hashlib.sha256(raw).hexdigest()


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
        id_, clean = str(doc["id"]), _clean_keys(rtype, keys)
        if members and rtype != "Group":
            raise ValueError("only groups have members")
        entity, data = _doc_entity(rtype, id_, doc, clean)
        index = _index_ops(rtype, id_, {}, clean)
        unique = {m.value: m for m in members}
        pairs = [_pair("upsert", id_, m) for m in unique.values()]
        after = list(unique.values()) if rtype == "Group" else None
        base: list[Op] = [("create", entity, {}), *index]
        return self._write_resource(rtype, id_, data, clean, base, pairs, after)

    def get(self, rtype: str, id: str) -> Stored:
        with translated(f"{rtype} {id}"):
            entity = self._table(rtype).get_entity(rtype, _doc_rk(id))
        inline = _inline_of(entity)
        return self._remember(rtype, _stored(entity, inline), inline)

    def replace(
        self, rtype: str, doc: Doc, keys: Keys, etag: str, members: MemberChange = _NO_CHANGE
    ) -> Stored:
        id_, clean = str(doc["id"]), _clean_keys(rtype, keys)
        if not members.empty and rtype != "Group":
            raise ValueError("only groups have members")
        entity, data = _doc_entity(rtype, id_, doc, clean)
        old_keys, _, inline = self._keys_at(rtype, id_, etag)
        pairs: list[Pair] = []
        after: Inline = inline
        if not members.empty:
            if inline is None and members.replace_all is None:
                inline = self._learn_members(id_)  # not known: one bounded read, then kept
            pairs, known = self._member_pairs(id_, members, inline)
            after = _LARGE if known is None else known
        options = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": _IF_MATCH}
        base = [("update", entity, options), *_index_ops(rtype, id_, old_keys, clean)]
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
            after = _LARGE if len(after) > INLINE_MEMBERS else sorted(after, key=_member_order)
        document = base[0][1]
        single = len(base) + sum(len(p) for p in pairs) <= MAX_BATCH_OPS
        finish: dict[str, Any] | None = None
        finished_inline: Inline = None  # what the last EGT keeps, if its write lands
        if isinstance(after, list) and not single:
            with_list, finished_inline = _with_inline(document, after)
            if finished_inline is not None:
                finish = {"mi": with_list["mi"]}
            after = None
        entity, kept_inline = _with_inline(document, after)
        base[0] = (base[0][0], entity, base[0][2])
        what = f"{rtype} {id_}"
        # A group that ends up large keeps no list, so no learner relies on its rows mid-change.
        group = id_ if rtype == "Group" and after != _LARGE else None
        first, finished = self._write(_TABLES[rtype], base, pairs, what, rtype, group, finish)
        stored = Stored(id_, json.loads(data), finished or first[0]["etag"], keys)
        return self._remember(rtype, stored, finished_inline if finished else kept_inline)

    def delete(self, rtype: str, id: str, etag: str | None = None) -> None:
        what = f"{rtype} {id}"
        while True:
            keys, current, _ = self._keys_at(rtype, id, etag)
            row = {"PartitionKey": rtype, "RowKey": _doc_rk(id)}
            doc: Op = ("delete", row, {"etag": current, "match_condition": _IF_MATCH})
            try:
                # Conditional even when the caller's etag is None, so that a concurrent rename
                # cannot leave its new index rows orphaned: retry with the fresh keys instead.
                self._write(_TABLES[rtype], [doc, *_index_ops(rtype, id, keys, {})], [], what)
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
            unit = _pair("delete", group_id, member_id)
            if member_id == id and group_id != id:
                # The group loses a member without a write of its own: whatever it kept inline
                # is stale. Marked "not known" in the same EGT, without reading the group (its
                # next member change reads its members once); this also changes its ETag.
                unit = (_forget_inline(group_id), *unit)
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
                    r["id"] for r in _range(table, rtype, f"{index}|{encode_key(value)}|", ["id"])
                ]
        raise ValueError(f"{rtype} has no index {index!r}")

    def scan(self, rtype: str) -> Iterator[Stored]:
        with translated(f"{rtype} scan"):
            for entity in _range(self._table(rtype), rtype, "id|", None):
                yield _stored(entity, _inline_of(entity))

    def bulk_load(self, rtype: str, items: Iterable[tuple[Doc, Keys]], *, workers: int = 4) -> int:
        """Packs several resources into each EGT and keeps ``workers`` EGTs in flight."""
        table, what, count = _TABLES[rtype], f"{rtype} bulk load", 0
        pending: deque[Future[Results]] = deque()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for ops, resources in _load_batches(rtype, items):
                if len(pending) >= 2 * workers:  # bounded: never hold all 100k resources
                    pending.popleft().result()
                pending.append(pool.submit(self._submit, table, ops, what, rtype))
                count += resources
            for future in pending:
                future.result()
        return count

    # --- membership ---------------------------------------------------------------------------
    def list_members(self, group_id: str, limit: int | None = None) -> list[Member]:
        with translated(f"members of Group {group_id}"):
            prefix = f"m|{encode_key(group_id)}|"
            # Only what a Member holds: the SDK's per-entity decoding (keys, Timestamp) is most
            # of the cost of a page, which a 1,000-row read halves (bench/README.md "Fixes").
            select = ["member", "type", "display"]
            if limit is None:
                rows: Iterable[TableEntity] = _range(
                    self._tables["groups"], "Group", prefix, select
                )
            else:
                # One request: the first page only, sized to tell "more than limit" apart.
                rows = _first_page(self._tables["groups"], "Group", prefix, limit + 1, select)
            return [Member(row["member"], row["type"], row.get("display")) for row in rows]

    def has_member(self, group_id: str, member_id: str) -> bool:
        return self._exists("groups", _member_rk(group_id, member_id))

    def groups_of(self, member_id: str) -> list[str]:
        with translated(f"groups of {member_id}"):
            prefix = f"r|{encode_key(member_id)}|"
            return [
                row["group"] for row in _range(self._tables["groups"], "Group", prefix, ["group"])
            ]

    # --- state --------------------------------------------------------------------------------
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None:
        try:
            with translated(f"state {name!r}"):
                entity = self._tables["state"].get_entity("state", encode_key(name))
        except NotFound:
            return None
        value: dict[str, Any] = json.loads(_unpack(entity))
        return value, str(entity.metadata["etag"])

    def put_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        entity = {
            "PartitionKey": "state",
            "RowKey": encode_key(name),
            "name": name,
            **_pack(value)[0],
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
        if rtype not in _TABLES:
            raise ValueError(f"unknown resource type {rtype!r}")
        return self._tables[_TABLES[rtype]]

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
            entity = self._table(rtype).get_entity(rtype, _doc_rk(id_), select=select)
        current = str(entity.metadata["etag"])
        if etag is not None and etag != current:  # fail before writing anything
            raise PreconditionFailed(f"{rtype} {id_} was modified since it was read")
        keys: dict[str, str] = json.loads(entity["keys"])
        return keys, current, _inline_of(entity)

    def _learn_members(self, group_id: str) -> Inline:
        page = self.list_members(group_id, limit=INLINE_MEMBERS)
        return page if len(page) <= INLINE_MEMBERS else _LARGE

    def _member_pairs(
        self, group_id: str, change: MemberChange, inline: Inline
    ) -> tuple[list[Pair], list[Member] | None]:
        """The membership rows to write, and the members afterwards when they are known."""
        after: dict[str, Member] | None = None
        if change.replace_all is not None:
            # O(group size) by nature unless the members are kept inline: the caller asked to
            # replace the whole list.
            target = {m.value: m for m in change.replace_all}
            known = inline if isinstance(inline, list) else self.list_members(group_id)
            current = {m.value: m for m in known}
            add = [m for m in target.values() if current.get(m.value) != m]
            remove = [member_id for member_id in current if member_id not in target]
            after = target
        else:
            # An id both added and removed ends up removed (MemoryStore applies adds first).
            remove = list(dict.fromkeys(change.remove))
            add = [m for m in {m.value: m for m in change.add}.values() if m.value not in remove]
            if isinstance(inline, list):
                # Known members: write only what changes (Entra re-sends members it added).
                current = {m.value: m for m in inline}
                remove = [member_id for member_id in remove if member_id in current]
                add = [m for m in add if current.get(m.value) != m]
                after = {k: m for k, m in current.items() if k not in remove}
                after.update((m.value, m) for m in add)
        pairs = [_pair("upsert", group_id, m) for m in add]
        pairs += [_pair("delete", group_id, m) for m in remove]
        return pairs, None if after is None else list(after.values())

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
                entity = {"PartitionKey": "Group", "RowKey": _doc_rk(group), **finish}
                options = {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": _IF_MATCH}
                try:
                    return first, str(
                        self._submit(table, [("update", entity, options), *chunk], what)[0]["etag"]
                    )
                except PreconditionFailed:
                    pass  # the group changed since the previous EGT: "not known" instead
            results = self._submit(table, [_forget_inline(group), *chunk], what)
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
                    if _may_be_gone(op) and not self._exists(table, op[1]["RowKey"])
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


def _range(
    table: TableClient, pk: str, prefix: str, select: list[str] | None
) -> Iterator[TableEntity]:
    """Rows whose RowKey starts with ``prefix`` (ending in ``|``; ``}`` sorts right after it)."""
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": prefix, "hi": prefix[:-1] + "}"}
    try:
        yield from table.query_entities(query, parameters=params, select=select)
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return  # no table: no rows (a store whose tables are created on demand)
        raise


def _first_page(
    table: TableClient, pk: str, prefix: str, size: int, select: list[str] | None = None
) -> list[TableEntity]:
    """At most ``size`` rows of a RowKey prefix, in one request (a page holds up to 1,000)."""
    if size > MAX_PAGE_ROWS:
        # More would silently come back as 1,000 rows, and a caller asking for limit + 1 could
        # no longer tell a group of more than ``limit`` members from one of exactly 1,000.
        raise ValueError(f"one request reads at most {MAX_PAGE_ROWS} rows, not {size}")
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": prefix, "hi": prefix[:-1] + "}"}
    pages = table.query_entities(
        query, parameters=params, results_per_page=size, select=select
    ).by_page()
    try:
        return list(next(pages, []))[:size]
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return []  # no table: no rows
        raise


def _load_batches(rtype: str, items: Iterable[tuple[Doc, Keys]]) -> Iterator[tuple[list[Op], int]]:
    """EGTs of several new resources each (document and index rows), with their resource count."""
    batch: list[Op] = []
    size = count = 0
    for doc, keys in items:
        id_, clean = str(doc["id"]), _clean_keys(rtype, keys)
        entity, data = _doc_entity(rtype, id_, doc, clean)
        if rtype == "Group":
            entity, _ = _with_inline(entity, [])  # loaded without members
        ops: list[Op] = [("create", entity, {}), *_index_ops(rtype, id_, {}, clean)]
        wire = len(data) * 4 // 3 + 1024  # binary travels base64-encoded; plus the index rows
        if len(batch) + len(ops) > MAX_BATCH_OPS or size + wire > MAX_BATCH_BYTES:
            yield batch, count
            batch, size, count = [], 0, 0
        batch, size, count = batch + ops, size + wire, count + 1
    if batch:
        yield batch, count


def _index_ops(rtype: str, id_: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Op]:
    """Delete the index rows of changed keys and create the new ones; a ``create`` fails with 409
    when a unique value is taken, which is the uniqueness check."""
    ops: list[Op] = []
    for index in (*UNIQUE_INDEXES[rtype], *NON_UNIQUE_INDEXES[rtype]):
        before, after = old.get(index), new.get(index)
        for verb, value in (("delete", before), ("create", after)) if before != after else ():
            if value is not None:
                rk = f"{index}|{encode_key(value)}"
                if index in NON_UNIQUE_INDEXES[rtype]:
                    rk += f"|{encode_key(id_)}"
                ops.append((verb, {"PartitionKey": rtype, "RowKey": rk, "id": id_}, {}))
    return ops


def _pair(verb: str, group_id: str, member: Member | str) -> Pair:
    member_id = member if isinstance(member, str) else member.value
    forward: dict[str, Any] = {"PartitionKey": "Group", "RowKey": _member_rk(group_id, member_id)}
    reverse_rk = f"r|{encode_key(member_id)}|{encode_key(group_id)}"
    reverse: dict[str, Any] = {"PartitionKey": "Group", "RowKey": reverse_rk}
    if isinstance(member, Member):
        forward |= {"group": group_id, "member": member_id, "type": member.type}
        reverse |= {"group": group_id, "member": member_id}
        if member.display is not None:
            forward["display"] = member.display
    options = {"mode": UpdateMode.REPLACE} if verb == "upsert" else {}
    return (verb, forward, options), (verb, reverse, options)


def _may_be_gone(op: Op) -> bool:
    """Whether ``op`` is one whose row may already be gone: a membership row's delete, or the
    mark of a group's inline members as not known (the group may have been deleted)."""
    if op[0] == "delete":
        return bool(op[1]["RowKey"][:2] in ("m|", "r|"))
    return op[0] == "update" and op[1].get("mi") == _UNKNOWN_MARK


def _forget_inline(group_id: str) -> Op:
    """Marks a group's inline members as not known (a merge of one property; the group must
    exist, any version)."""
    entity = {"PartitionKey": "Group", "RowKey": _doc_rk(group_id), "mi": _UNKNOWN_MARK}
    return ("update", entity, {"mode": UpdateMode.MERGE})


def _member_order(member: Member) -> str:
    return encode_key(member.value)  # list_members' order: by membership RowKey


def _with_inline(entity: dict[str, Any], inline: Inline) -> tuple[dict[str, Any], Inline]:
    """The document entity with its inline-member properties, and what was kept: a list that
    would not fit (INLINE_BYTES, or the entity's 1 MiB) is not kept."""
    if inline is None:
        return entity, None
    if inline == _LARGE:
        return {**entity, "ml": True}, _LARGE
    assert isinstance(inline, list)
    data = json.dumps(
        [[m.value, m.type, m.display] for m in inline], separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8", "surrogatepass")
    with_list = {**entity, "mi": data}
    if len(data) > INLINE_BYTES or _entity_size(with_list) > MAX_ENTITY_BYTES:
        return entity, None
    return with_list, inline


def _inline_of(entity: Mapping[str, Any]) -> Inline:
    if entity.get("ml"):
        return _LARGE
    raw = entity.get("mi")
    if not raw or bytes(raw) == _UNKNOWN_MARK:
        return None
    return [Member(value, kind, display) for value, kind, display in json.loads(bytes(raw))]


def _doc_rk(id_: str) -> str:
    return f"id|{encode_key(id_)}"


def _member_rk(group_id: str, member_id: str) -> str:
    return f"m|{encode_key(group_id)}|{encode_key(member_id)}"


def _pack(value: Mapping[str, Any]) -> tuple[dict[str, bytes], bytes]:
    """The compact JSON of ``value`` split into binary properties d0, d1, ...; and the JSON."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"the resource is {len(data)} bytes; the store holds at most {MAX_DOCUMENT_BYTES}"
        )
    starts = range(0, max(len(data), 1), CHUNK_BYTES)
    return {f"d{n}": data[start : start + CHUNK_BYTES] for n, start in enumerate(starts)}, data


def _unpack(entity: Mapping[str, Any]) -> bytes:
    parts: list[bytes] = []
    while f"d{len(parts)}" in entity:
        parts.append(bytes(entity[f"d{len(parts)}"]))
    return b"".join(parts)


def _doc_entity(
    rtype: str, id_: str, doc: Doc, keys: Mapping[str, str]
) -> tuple[dict[str, Any], bytes]:
    props, data = _pack(doc)
    keys_json = json.dumps(keys)
    entity = {"PartitionKey": rtype, "RowKey": _doc_rk(id_), "id": id_, "keys": keys_json, **props}
    size = _entity_size(entity)
    if size > MAX_ENTITY_BYTES or len(keys_json) > MAX_STRING_CHARS:
        raise PayloadTooLarge(
            f"the resource needs {size} bytes of storage; at most {MAX_ENTITY_BYTES} fit"
        )
    return entity, data


def _entity_size(entity: Mapping[str, Any]) -> int:
    """The entity's size as the service counts it: 8 bytes and the UTF-16 name per property."""
    return 4 + sum(8 + 2 * len(name) + 4 + _value_size(v) for name, v in entity.items())


def _value_size(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return 2 * len(value)
    return 8  # bool, numbers


def _stored(entity: TableEntity, inline: Inline) -> Stored:
    keys: dict[str, str] = json.loads(entity["keys"])
    return Stored(
        entity["id"],
        json.loads(_unpack(entity)),
        str(entity.metadata["etag"]),
        keys,
        members=inline if isinstance(inline, list) else None,
    )


def _clean_keys(rtype: str, keys: Keys) -> dict[str, str]:
    """Check the index names; drop absent (None) values."""
    if rtype not in _TABLES:
        raise ValueError(f"unknown resource type {rtype!r}")
    unknown = set(keys) - {*UNIQUE_INDEXES[rtype], *NON_UNIQUE_INDEXES[rtype]}
    if unknown:
        raise ValueError(f"{rtype} has no index {sorted(unknown)}")
    return {index: value for index, value in keys.items() if value is not None}
