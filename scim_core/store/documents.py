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
from collections.abc import Mapping
from typing import Any

from azure.data.tables import TableEntity

from scim_core.errors import PayloadTooLarge
from scim_core.store.batch import Op
from scim_core.store.protocol import NON_UNIQUE_INDEXES, UNIQUE_INDEXES, Member, Stored

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
    size = entity_size(entity)
    if size > MAX_ENTITY_BYTES or len(keys_json) > MAX_STRING_CHARS:
        raise PayloadTooLarge(
            f"the resource needs {size} bytes of storage; at most {MAX_ENTITY_BYTES} fit"
        )
    return entity, data


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


def clean_keys(rtype: str, keys: Keys) -> dict[str, str]:
    """Check the index names; drop absent (None) values."""
    if rtype not in TABLES:
        raise ValueError(f"unknown resource type {rtype!r}")
    unknown = set(keys) - {*UNIQUE_INDEXES[rtype], *NON_UNIQUE_INDEXES[rtype]}
    if unknown:
        raise ValueError(f"{rtype} has no index {sorted(unknown)}")
    return {index: value for index, value in keys.items() if value is not None}


def index_ops(rtype: str, id_: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Op]:
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
