"""Bulk loading (benchmarks, migrations): many new resources per EGT, several EGTs in flight."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from scim_core.store.batch import Op, Results
from scim_core.store.documents import MAX_BATCH_OPS, Doc, Keys, doc_entity, index_ops
from scim_core.store.membership import birth_ops, with_inline
from scim_core.store.protocol import clean_keys

MAX_BATCH_BYTES = 3 * 1024 * 1024  # the EGT payload limit is 4 MiB; binary travels as base64


def load(
    rtype: str,
    items: Iterable[tuple[Doc, Keys]],
    submit: Callable[[list[Op]], Results],
    submit_births: Callable[[list[Op]], Results],
    workers: int,
) -> int:
    """Creates ``items`` (documents with their index keys) through ``submit`` (one EGT each
    call), ``workers`` at a time; returns how many resources were created. Users' liveness
    rows (:mod:`scim_core.store.membership`) live in the groups table: they follow, through
    ``submit_births``, 50 users an EGT (a group's go in its own EGT)."""
    born: list[str] = []
    batches = load_batches(rtype, items, born if rtype == "User" else None)
    count = sum(n for n in _run(batches, submit, workers))
    births = (
        [op for id_ in born[i : i + 50] for op in birth_ops(id_, rtype)]
        for i in range(0, len(born), 50)
    )
    for _ in _run(((ops, 0) for ops in births), submit_births, workers):
        pass
    return count


def _run(
    batches: Iterable[tuple[list[Op], int]], submit: Callable[[list[Op]], Results], workers: int
) -> Iterator[int]:
    """Submits the batches ``workers`` at a time; yields each batch's count once it landed."""
    pending: deque[tuple[Future[Results], int]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for ops, count in batches:
            if len(pending) >= 2 * workers:  # bounded: never hold all 100k resources
                future, done = pending.popleft()
                future.result()
                yield done
            pending.append((pool.submit(submit, ops), count))
        for future, done in pending:
            future.result()
            yield done


def load_batches(
    rtype: str, items: Iterable[tuple[Doc, Keys]], born: list[str] | None = None
) -> Iterator[tuple[list[Op], int]]:
    """EGTs of several new resources each (document and index rows; a group's liveness rows
    too), with their resource count. ``born`` collects the ids whose liveness rows are still
    to be written (users: another table)."""
    batch: list[Op] = []
    size = count = 0
    for doc, keys in items:
        id_, clean = str(doc["id"]), clean_keys(rtype, keys)
        entity, data = doc_entity(rtype, id_, doc, clean)
        if rtype == "Group":
            entity, _ = with_inline(entity, [])  # loaded without members
        ops: list[Op] = [("create", entity, {}), *index_ops(rtype, id_, {}, clean)]
        if rtype == "Group":
            ops += birth_ops(id_, rtype)
        elif born is not None:
            born.append(id_)
        wire = len(data) * 4 // 3 + 1024  # binary travels base64-encoded; plus the index rows
        if len(batch) + len(ops) > MAX_BATCH_OPS or size + wire > MAX_BATCH_BYTES:
            yield batch, count
            batch, size, count = [], 0, 0
        batch, size, count = batch + ops, size + wire, count + 1
    if batch:
        yield batch, count
