"""Storage cost of each TableStore operation, counted in HTTP requests (DESIGN.md "Storage
design": every Entra query is a point read; changing k members costs O(k), independent of the
group's size)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from scim_core.store import Member, MemberChange
from scim_core.store.table import TableStore
from tests.store.test_contract import real


def cost(store: TableStore, action: Callable[[], Any]) -> int:
    before = store.request_count
    action()
    return store.request_count - before


def new_user(name: str) -> tuple[dict[str, Any], dict[str, str | None]]:
    return {"id": str(uuid.uuid4()), "userName": name}, {
        "userName": name,
        "externalId": "e-" + name,
    }


def test_create_is_one_transaction_and_a_user_s_liveness_rows_one_more(
    table_store: TableStore,
) -> None:
    """Create = one EGT of the document and its index rows; a user's liveness rows (which a
    member add checks, store/membership.py) live in the groups table: a second EGT. A group's
    go in its own EGT."""
    assert cost(table_store, lambda: table_store.create("User", *new_user("a"))) == 2
    group = {"id": "g0", "displayName": "g0"}
    assert cost(table_store, lambda: table_store.create("Group", group, {"displayName": "g0"})) == 1


def test_create_group_with_32_members_is_one_request(table_store: TableStore) -> None:
    """Document, index row and liveness rows (4) and three operations a member: 32 fit."""
    doc = {"id": "g", "displayName": "g"}
    members = [Member(m) for m in real(table_store, *(f"u{n}" for n in range(32)))]
    assert (
        cost(table_store, lambda: table_store.create("Group", doc, {"displayName": "g"}, members))
        == 1
    )


def test_get_is_one_request(table_store: TableStore) -> None:
    created = table_store.create("User", *new_user("a"))
    assert cost(table_store, lambda: table_store.get("User", created.id)) == 1


@pytest.mark.parametrize("index", ["userName", "externalId"], ids=["unique", "non-unique"])
def test_lookup_is_one_request(table_store: TableStore, index: str) -> None:
    """userName eq / externalId eq: one point read or one RowKey range query."""
    table_store.create("User", *new_user("a"))
    value = {"userName": "a", "externalId": "e-a"}[index]
    assert cost(table_store, lambda: table_store.lookup("User", index, value)) == 1


def test_has_member_is_one_request(table_store: TableStore) -> None:
    """`id eq .. and members eq ..` is a point read."""
    real(table_store, "u")
    table_store.create(
        "Group", {"id": "g", "displayName": "g"}, {"displayName": "g"}, [Member("u")]
    )
    assert cost(table_store, lambda: table_store.has_member("g", "u")) == 1


def test_replace_after_get_is_one_request(table_store: TableStore) -> None:
    """The keys of a version just read are known: replace is one EGT."""
    doc, keys = new_user("a")
    created = table_store.create("User", doc, keys)
    renamed = {**doc, "userName": "b"}
    assert (
        cost(
            table_store,
            lambda: table_store.replace("User", renamed, {"userName": "b"}, created.etag),
        )
        == 1
    )


def test_replace_by_another_process_reads_the_keys_first(table_store: TableStore) -> None:
    """A store that never saw the version reads its keys (one point read), then one EGT."""
    doc, keys = new_user("a")
    created = table_store.create("User", doc, keys)
    prefix, counter = table_store.table_prefix, table_store.counter
    other = TableStore(table_store.service, table_prefix=prefix, counter=counter)
    assert cost(other, lambda: other.replace("User", doc, keys, created.etag)) == 2


def add_one_member_cost(store: TableStore, group_size: int) -> int:
    gid = f"g{group_size}"
    members = real(store, *(f"u{group_size}-{n}" for n in range(group_size)))
    store.create(
        "Group", {"id": gid, "displayName": gid}, {"displayName": gid}, [Member(m) for m in members]
    )
    real(store, f"newcomer{group_size}")
    group = store.get("Group", gid)
    change = MemberChange(add=[Member(f"newcomer{group_size}")])
    return cost(store, lambda: store.replace("Group", group.doc, group.keys, group.etag, change))


def test_adding_a_member_costs_the_same_whatever_the_group_size(table_store: TableStore) -> None:
    """Changing k members costs O(k), independent of group size (a 100k-member group is normal)."""
    small, large = add_one_member_cost(table_store, 10), add_one_member_cost(table_store, 500)
    assert small == large == 1


def test_adding_k_members_costs_ceil_k_over_33_transactions(table_store: TableStore) -> None:
    """Three operations a member (its two membership rows and the check of its liveness row):
    33 in an EGT of 100 with the group's own row; 120 members -> 4 EGTs."""
    table_store.create("Group", {"id": "g", "displayName": "g"}, {"displayName": "g"})
    group = table_store.get("Group", "g")
    change = MemberChange(
        add=[Member(m) for m in real(table_store, *(f"u{n}" for n in range(120)))]
    )
    assert (
        cost(
            table_store,
            lambda: table_store.replace("Group", group.doc, group.keys, group.etag, change),
        )
        == 4
    )


def test_bulk_load_packs_resources_into_transactions(table_store: TableStore) -> None:
    """Two rows per user (document, userName index): 50 users per 100-operation EGT; then
    their liveness rows (two each, in the groups table), 50 users per EGT."""
    items = [({"id": f"u{n}", "userName": f"u{n}"}, {"userName": f"u{n}"}) for n in range(200)]
    assert cost(table_store, lambda: table_store.bulk_load("User", items)) == 4 + 4
