"""``list_members(group, limit=INLINE_MEMBERS)`` answers from one storage request with
limit + 1 members when the group has more than the limit, so the store can learn whether a
group's members fit inline without reading them all (store.INLINE_MEMBERS). One Table Storage
page holds 1,000 rows: a larger ``limit`` cannot keep that promise and is refused rather than
silently answered with 1,000."""

from __future__ import annotations

import uuid

import pytest

from scim_core.store import INLINE_MEMBERS, Member, MemberChange, Store
from scim_core.store.table import TableStore
from tests.store.test_contract import real


def big_group(store: Store, size: int) -> str:
    doc = {"id": str(uuid.uuid4()), "displayName": "big", "meta": {"resourceType": "Group"}}
    created = store.create("Group", doc, {"displayName": "big"})
    members = [Member(i) for i in real(store, *(str(uuid.UUID(int=i + 1)) for i in range(size)))]
    store.replace("Group", created.doc, created.keys, created.etag, MemberChange(add=members))
    return created.id


@pytest.mark.parametrize(
    ("size", "expected"), [(99, 99), (100, 100), (1500, 100)], ids=["99", "100", "1500"]
)
def test_page_tells_more_than_the_limit_apart(store: Store, size: int, expected: int) -> None:
    gid = big_group(store, size)
    page = store.list_members(gid, limit=INLINE_MEMBERS)
    assert len(page) == expected
    assert (len(page) > INLINE_MEMBERS) == (size > INLINE_MEMBERS)


def test_table_page_read_is_one_request(table_store: TableStore) -> None:
    gid = big_group(table_store, 1500)
    before = table_store.request_count
    table_store.list_members(gid, limit=INLINE_MEMBERS)
    assert table_store.request_count - before == 1


def test_table_refuses_a_limit_one_page_cannot_serve(table_store: TableStore) -> None:
    gid = big_group(table_store, 10)
    with pytest.raises(ValueError, match="at most 1000 rows"):
        table_store.list_members(gid, limit=1000)
