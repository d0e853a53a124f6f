"""Bulk loading (benchmarks, migrations): many new resources per EGT, several EGTs in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from scim_core.store.batch import Op, Results
from scim_core.store.documents import MAX_BATCH_OPS, Doc, Keys, clean_keys, doc_entity, index_ops
from scim_core.store.membership import with_inline

MAX_BATCH_BYTES = 3 * 1024 * 1024  # the EGT payload limit is 4 MiB; binary travels as base64


def load(
    rtype: str,
    items: Iterable[tuple[Doc, Keys]],
    submit: Callable[[list[Op]], Results],
    workers: int,
) -> int:
    """Creates ``items`` (documents with their index keys) through ``submit`` (one EGT each
    call), ``workers`` at a time; returns how many resources were created."""
    count = 0
    pending: deque[Future[Results]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for ops, resources in load_batches(rtype, items):
            if len(pending) >= 2 * workers:  # bounded: never hold all 100k resources
                pending.popleft().result()
            pending.append(pool.submit(submit, ops))
            count += resources
        for future in pending:
            future.result()
    return count


def load_batches(rtype: str, items: Iterable[tuple[Doc, Keys]]) -> Iterator[tuple[list[Op], int]]:
    """EGTs of several new resources each (document and index rows), with their resource count."""
    batch: list[Op] = []
    size = count = 0
    for doc, keys in items:
        id_, clean = str(doc["id"]), clean_keys(rtype, keys)
        entity, data = doc_entity(rtype, id_, doc, clean)
        if rtype == "Group":
            entity, _ = with_inline(entity, [])  # loaded without members
        ops: list[Op] = [("create", entity, {}), *index_ops(rtype, id_, {}, clean)]
        wire = len(data) * 4 // 3 + 1024  # binary travels base64-encoded; plus the index rows
        if len(batch) + len(ops) > MAX_BATCH_OPS or size + wire > MAX_BATCH_BYTES:
            yield batch, count
            batch, size, count = [], 0, 0
        batch, size, count = batch + ops, size + wire, count + 1
    if batch:
        yield batch, count
