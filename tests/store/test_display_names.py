"""``Store.display_names`` on both stores: a group's displayName, a user's displayName else its
userName; missing resources left out; a Table row written before the ``dn`` property existed
still answers (read whole)."""

from __future__ import annotations

from scim_core.store import Store
from scim_core.store.documents import DISPLAY, doc_rk
from scim_core.store.table import TableStore


def test_names_of_users_and_groups(store: Store) -> None:
    store.create("User", {"id": "u1", "userName": "ann@x", "displayName": "Ann"}, {"userName": "a"})
    store.create("User", {"id": "u2", "userName": "bob@x"}, {"userName": "b"})
    store.create("Group", {"id": "g1", "displayName": "Sales"}, {"displayName": "sales"})
    assert store.display_names("User", ["u1", "u2", "nobody", "u1"]) == {
        "u1": "Ann",
        "u2": "bob@x",
    }
    assert store.display_names("Group", ["g1"]) == {"g1": "Sales"}
    assert store.display_names("Group", []) == {}


def test_a_rename_is_seen_at_once(store: Store) -> None:
    created = store.create("Group", {"id": "g1", "displayName": "Old"}, {"displayName": "old"})
    store.replace("Group", {"id": "g1", "displayName": "New"}, {"displayName": "new"}, created.etag)
    assert store.display_names("Group", ["g1"]) == {"g1": "New"}


def test_a_row_without_the_name_property_is_read_whole(table_store: TableStore) -> None:
    table_store.create("User", {"id": "u1", "userName": "old@x"}, {"userName": "old@x"})
    table = table_store.service.get_table_client(table_store.table_names[0])
    row = table.get_entity("User", doc_rk("u1"))
    del row[DISPLAY]
    table.upsert_entity(row, mode="replace")
    assert DISPLAY not in table.get_entity("User", doc_rk("u1"))
    assert table_store.display_names("User", ["u1"]) == {"u1": "old@x"}
