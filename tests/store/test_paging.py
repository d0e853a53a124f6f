"""Contract: paged reads (``scan`` from a position, ``positions`` key-only), on both stores.

A list page must read only its page (README "Paging"): ``scan(after=...)`` seeks, and a
continuation spans Table Storage's 1,000-row response (Learn, "Query timeout and pagination":
a query returns at most 1,000 entities and a continuation token)."""

from __future__ import annotations

import itertools

import pytest

from scim_core.store import Store
from scim_core.store.table import TableStore
from tests.store.test_contract import make_group, make_user, user


def seed(store: Store, n: int) -> set[str]:
    items = [user(f"user-{k:05}") for k in range(n)]
    store.bulk_load("User", items)
    return {doc["id"] for doc, _ in items}


def test_scan_positions_continue_after_a_position(store: Store) -> None:
    """Every resource once, in position order; ``after`` resumes right after a position."""
    ids = seed(store, 30)
    walk = list(store.scan("User"))
    assert {s.id for s in walk} == ids
    positions = [s.position for s in walk]
    assert positions == sorted(positions) and len(set(positions)) == 30
    assert [s.id for s in store.scan("User", positions[9])] == [s.id for s in walk[10:]]
    assert list(store.positions("User", positions[9])) == positions[10:]
    assert list(store.scan("User", positions[-1])) == []


def test_scan_skips_index_and_membership_rows_after_a_position(store: Store) -> None:
    """A position inside the documents never lets a scan wander into index or member rows."""
    u = make_user(store, "zed", "ext")
    g = make_group(store, "grp")
    [first] = store.scan("User")
    assert list(store.scan("User", first.position)) == []
    assert [s.id for s in store.scan("User", "")] == [u]
    assert [s.id for s in store.scan("Group")] == [g]


@pytest.mark.parametrize("page_size", [1, 7, 1000], ids=["one", "seven", "max"])
def test_scan_page_size_changes_requests_not_results(store: Store, page_size: int) -> None:
    """``page_size`` sizes the storage requests; the sequence is the same."""
    seed(store, 20)
    assert [s.id for s in store.scan("User", page_size=page_size)] == [
        s.id for s in store.scan("User")
    ]


def test_scan_deleted_position_still_resumes(store: Store) -> None:
    """A cursor position is a key, not a row: deleting that resource does not lose the place."""
    seed(store, 10)
    walk = list(store.scan("User"))
    store.delete("User", walk[4].id)
    assert [s.id for s in store.scan("User", walk[4].position)] == [s.id for s in walk[5:]]


def test_scan_and_positions_span_storage_pages(store: Store) -> None:
    """2,500 users: a scan and a key-only walk follow continuation tokens past 1,000 rows, and
    a scan from a position past the first response continues there."""
    ids = seed(store, 2500)
    walk = list(store.scan("User"))
    assert len(walk) == 2500 and {s.id for s in walk} == ids
    positions = list(store.positions("User"))
    assert positions == [s.position for s in walk]
    rest = list(store.scan("User", positions[1499], page_size=1000))
    assert [s.id for s in rest] == [s.id for s in walk[1500:]]


def test_table_scan_reads_only_what_is_taken(table_store: TableStore) -> None:
    """A page of n reads one response of n documents, not the partition (O(page))."""
    seed(table_store, 50)
    before = table_store.request_count
    taken = list(itertools.islice(table_store.scan("User", None, 11), 11))
    assert len(taken) == 11
    assert table_store.request_count - before == 1
    before = table_store.request_count
    assert sum(1 for _ in table_store.positions("User")) == 50
    assert table_store.request_count - before == 1  # key-only, one response
