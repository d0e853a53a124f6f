"""The Table entities of resources: documents, their row keys and index rows.

A document is stored as compact UTF-8 JSON split over *binary* properties ``d0, d1, ...``:
string properties count UTF-16 (two bytes a character), which would halve the largest document
the 1 MiB entity limit allows. Every ``<...>`` of a row key goes through :func:`encode_key`: keys
may not contain ``/ \\ # ?`` or control characters, and Entra guest UPNs contain ``#EXT#``.
Documents share the ``id|`` prefix, so a scan is a RowKey range that never reads index or
membership rows. Layout: :mod:`scim_core.store.table`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableEntity, UpdateMode

from scim_core.errors import PayloadTooLarge
from scim_core.store.batch import Op
from scim_core.store.protocol import (
    CHANGE_INDEX,
    Member,
    Stored,
    display_name,
    index_of,
    is_non_unique,
    stamp,
)

MAX_DOCUMENT_BYTES = 1_000_000  # == scim_core.store.memory.MAX_DOCUMENT_BYTES (contract-tested)
MAX_ENTITY_BYTES = 1024 * 1024
CHUNK_BYTES = 64_000  # a binary property holds at most 64 KiB
MAX_STRING_CHARS = 32_000  # a string property holds at most 64 KiB of UTF-16
MAX_BATCH_OPS = 100  # an EGT holds <= 100 operations; Azurite accepts more, Azure does not
MAX_KEY_CHARS = 700  # a RowKey is <= 1 KiB; longer values are keyed by their digest
TABLES = {"User": "users", "Group": "groups"}

Doc = dict[str, Any]
Keys = Mapping[str, str | None]


def encode_key(value: str) -> str:
    """A RowKey-safe encoding: unpadded base64url of the UTF-8 (so never ``|``), or ``~`` and the
    SHA-256 when that would exceed MAX_KEY_CHARS (``~`` is not in the base64url alphabet)."""
    raw = value.encode("utf-8", "surrogatepass")
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return encoded if len(encoded) <= MAX_KEY_CHARS else "~" + hashlib.sha256(raw).hexdigest()


def doc_rk(id_: str) -> str:
    return f"id|{encode_key(id_)}"


def pack(value: Mapping[str, Any]) -> tuple[dict[str, bytes], bytes]:
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


def unpack(entity: Mapping[str, Any]) -> bytes:
    parts: list[bytes] = []
    while f"d{len(parts)}" in entity:
        parts.append(bytes(entity[f"d{len(parts)}"]))
    return b"".join(parts)


def doc_entity(
    rtype: str, id_: str, doc: Doc, keys: Mapping[str, str]
) -> tuple[dict[str, Any], bytes]:
    props, data = pack(doc)
    keys_json = json.dumps(keys)
    entity = {"PartitionKey": rtype, "RowKey": doc_rk(id_), "id": id_, "keys": keys_json, **props}
    name = display_name(doc)
    if name is not None:
        entity[DISPLAY] = name[:MAX_STRING_CHARS]
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES or len(keys_json) > MAX_STRING_CHARS:
        raise PayloadTooLarge(
            f"the resource needs {size} bytes of storage; at most {MAX_ENTITY_BYTES} fit"
        )
    return entity, data


#: The property holding a resource's display name (:func:`display_name`), so that the name of a
#: group on a user, or of a member, is a point read of one small property.
DISPLAY = "dn"


def entity_size(entity: Mapping[str, Any]) -> int:
    """The entity's size as the service counts it: 8 bytes and the UTF-16 name per property."""
    return 4 + sum(8 + 2 * len(name) + 4 + _value_size(v) for name, v in entity.items())


def _value_size(value: Any) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return 2 * len(value)
    return 8  # bool, numbers


def stored_from(entity: TableEntity, members: list[Member] | None) -> Stored:
    keys: dict[str, str] = json.loads(entity["keys"])
    return Stored(
        entity["id"],
        json.loads(unpack(entity)),
        str(entity.metadata["etag"]),
        keys,
        members=members,
    )


def index_ops(rtype: str, id_: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Op]:
    """Delete the index rows of values a resource no longer has and create those of its new
    values (compared as sets per index, so values that only moved between ``name#n`` keys
    write nothing); a ``create`` fails with 409 when a unique value is taken, which is the
    uniqueness check."""
    ops: list[Op] = []
    before, after = _values_by_index(old), _values_by_index(new)
    for index in sorted(before.keys() | after.keys()):
        gone = before.get(index, set()) - after.get(index, set())
        added = after.get(index, set()) - before.get(index, set())
        for verb, values in (("delete", gone), ("create", added)):
            for value in sorted(values):
                rk = f"{index}|{index_value(index, value)}"
                if is_non_unique(rtype, index):
                    rk += f"|{encode_key(id_)}"
                ops.append((verb, {"PartitionKey": rtype, "RowKey": rk, "id": id_}, {}))
    return ops


def index_value(index: str, value: str) -> str:
    """A value as its index row's key holds it: encoded (:func:`encode_key`), except the change
    index's stamps, kept as written so RowKey order is time order (they hold only digits and
    ``-:.TZ``, all allowed in a key)."""
    if index == CHANGE_INDEX:
        if not _STAMP.fullmatch(value):
            raise ValueError(f"{value!r} is not a change stamp")
        return value
    return encode_key(value)


_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def tombstone_op(rtype: str, id_: str) -> Op:
    """The tombstone of a resource deleted now, for change polls: ``lt|<stamp>|<id>`` (a prefix
    of its own, so purging old ones reads only tombstones)."""
    rk = f"lt|{stamp(datetime.now(UTC))}|{encode_key(id_)}"
    entity = {"PartitionKey": rtype, "RowKey": rk, "id": id_}
    return ("upsert", entity, {"mode": UpdateMode.REPLACE})


def _values_by_index(keys: Mapping[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, value in keys.items():
        out.setdefault(index_of(key), set()).add(value)
    return out
