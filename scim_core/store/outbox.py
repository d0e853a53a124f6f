"""The Table store's outbox rows, display names and state records.

Outbox rows (:class:`~scim_core.store.protocol.Outbox`) live in the partition of the resource
whose change wrote them, RowKey ``ob|<queue>|<key>``, so they can go in that change's
entity-group transaction: the change and its rows commit together or not at all (Learn,
"Performing entity group transactions": an EGT is atomic and all its entities share one
PartitionKey). A queue is a RowKey prefix of its own: reading its head is one range read that
touches no resource row, and removing what was read costs one EGT per 100 rows.

State records (Graph sync checkpoints, cursor keys, the event stream's push state) are rows of
the ``state`` table, one per name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from scim_core.errors import NotFound, PreconditionFailed
from scim_core.store.batch import Op
from scim_core.store.documents import (
    DISPLAY,
    MAX_BATCH_OPS,
    TABLES,
    doc_rk,
    encode_key,
    pack,
    unpack,
)
from scim_core.store.errors import RowMissing, TableMissing, translated
from scim_core.store.paging import first_page
from scim_core.store.protocol import (
    MAX_OUTBOX_READ,
    Outbox,
    OutboxEntry,
    check_queue,
    display_name,
    event_key,
)
from scim_core.store.writes import Writes

_IF_MATCH = MatchConditions.IfNotModified
#: Sends the point reads of :meth:`OutboxRows.display_names` concurrently.
_NAMES = ThreadPoolExecutor(max_workers=16, thread_name_prefix="scim-names")


def outbox_rk(queue: str, key: str) -> str:
    return f"ob|{queue}|{key}"


def outbox_ops(
    rtype: str, rows: Sequence[Outbox], previous: str | None, new: str | None
) -> list[Op]:
    """The EGT operations that write ``rows`` with a change of a resource whose change index
    moves from ``previous`` to ``new`` (event keys are assigned here: :func:`event_key`)."""
    ops: list[Op] = []
    for row in rows:
        key = row.key if row.key is not None else event_key(previous, new)
        entity = {"PartitionKey": rtype, "RowKey": outbox_rk(row.queue, key), **pack(row.body)[0]}
        if row.replace:
            ops.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        else:
            ops.append(("create", entity, {}))
    return ops


class OutboxRows(Writes):
    """The outbox and state part of :class:`~scim_core.store.table.TableStore`."""

    # --- outbox -------------------------------------------------------------------------------
    def outbox_read(
        self, rtype: str, queue: str, limit: int, after: str | None = None
    ) -> list[OutboxEntry]:
        check_queue(queue)
        if not 0 < limit <= MAX_OUTBOX_READ:
            raise ValueError(f"one read returns 1 to {MAX_OUTBOX_READ} rows, not {limit}")
        prefix = outbox_rk(queue, "")
        with translated(f"{rtype} outbox {queue}"):
            rows = first_page(self._table(rtype), rtype, prefix, limit, after=after)
        return [
            OutboxEntry(
                str(row["RowKey"])[len(prefix) :],
                json.loads(unpack(row)),
                str(row.metadata["etag"]),
            )
            for row in rows
        ]

    def outbox_remove(
        self, rtype: str, queue: str, entries: Sequence[tuple[str, str | None]]
    ) -> int:
        check_queue(queue)
        table, removed = TABLES[rtype], 0
        ops: list[Op] = []
        for key, etag in dict(entries).items():  # an EGT may not name a row twice
            row = {"PartitionKey": rtype, "RowKey": outbox_rk(queue, key)}
            options = {} if etag is None else {"etag": etag, "match_condition": _IF_MATCH}
            ops.append(("delete", row, options))
        for start in range(0, len(ops), MAX_BATCH_OPS):
            removed += self._remove(table, ops[start : start + MAX_BATCH_OPS])
        return removed

    def _remove(self, table: str, ops: list[Op]) -> int:
        """One EGT of deletes. A row already gone (404) or rewritten since it was read (412)
        fails the whole EGT: it is dropped (named by the service's index, or found by a point
        read) and the rest resent."""
        while ops:
            try:
                self._submit(table, ops, "outbox")
                return len(ops)
            except NotFound as exc:
                index = exc.index if isinstance(exc, RowMissing) else None
                if index is not None and 0 <= index < len(ops):
                    ops = ops[:index] + ops[index + 1 :]
                else:
                    ops = [op for op in ops if self._etag_of(table, op) is not None]
            except PreconditionFailed:
                ops = [op for op in ops if self._etag_of(table, op) == op[2].get("etag")]
        return 0

    def _etag_of(self, table: str, op: Op) -> str | None:
        """The current etag of an operation's row, None if it is gone."""
        try:
            with translated("outbox"):
                row = self._tables[table].get_entity(
                    op[1]["PartitionKey"], op[1]["RowKey"], select=["RowKey"]
                )
        except NotFound:
            return None
        return str(row.metadata["etag"])

    def outbox_put(self, rtype: str, items: Sequence[Outbox]) -> None:
        if any(o.key is None for o in items):
            raise ValueError("outbox_put writes rows with their keys given")
        rows = [Outbox(o.queue, o.key, o.body, replace=True) for o in items]
        ops = outbox_ops(rtype, rows, None, None)
        for start in range(0, len(ops), MAX_BATCH_OPS):
            self._submit(TABLES[rtype], ops[start : start + MAX_BATCH_OPS], "outbox")

    # --- names --------------------------------------------------------------------------------
    def display_names(self, rtype: str, ids: Sequence[str]) -> dict[str, str]:
        """Concurrent point reads of each resource's ``dn`` property; a resource last written
        before that property existed is read whole (its name is in its document) until its
        next write."""
        table = self._table(rtype)

        def one(id_: str) -> tuple[str, str | None]:
            try:
                with translated(f"{rtype} {id_}"):
                    row = table.get_entity(rtype, doc_rk(id_), select=[DISPLAY])
                    if not row.get(DISPLAY):
                        row = table.get_entity(rtype, doc_rk(id_))
                        return id_, display_name(json.loads(unpack(row)))
            except NotFound:
                return id_, None
            return id_, str(row[DISPLAY])

        unique = list(dict.fromkeys(ids))
        found = list(_NAMES.map(one, unique)) if len(unique) > 1 else [one(i) for i in unique]
        return {id_: name for id_, name in found if name is not None}

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
        entity: Mapping[str, Any] = {
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
