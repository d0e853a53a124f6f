"""The Store contract (``scim_core/store/protocol.py``), run against every implementation.

Requirements are DESIGN.md "Storage design" unless a test cites otherwise. The service normalises
index values (casefolding caseExact=false attributes) before calling the store, so the store
compares values exactly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devhost.azurite import ACCOUNT_KEY, ACCOUNT_NAME, free_port
from scim_core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
)
from scim_core.store import Member, MemberChange, Store, documents, memory
from scim_core.store.table import TableStore


def user(
    user_name: str, external_id: str | None = None, **extra: Any
) -> tuple[dict[str, Any], dict[str, str | None]]:
    id_ = str(uuid.uuid4())
    doc = {"id": id_, "userName": user_name, "meta": {"resourceType": "User"}, **extra}
    return doc, {"userName": user_name, "externalId": external_id}


def make_user(store: Store, user_name: str, external_id: str | None = None) -> str:
    doc, keys = user(user_name, external_id)
    return store.create("User", doc, keys).id


def real(store: Store, *ids: str) -> list[str]:
    """Users with exactly these ids (userName = id): a group keeps only members that exist."""
    docs = [
        ({"id": i, "userName": i, "meta": {"resourceType": "User"}}, {"userName": i}) for i in ids
    ]
    store.bulk_load("User", docs)
    return list(ids)


def make_group(store: Store, name: str, members: list[Member] | None = None) -> str:
    doc = {"id": str(uuid.uuid4()), "displayName": name, "meta": {"resourceType": "Group"}}
    return store.create("Group", doc, {"displayName": name}, members or []).id


def members_of(store: Store, group_id: str) -> set[str]:
    return {m.value for m in store.list_members(group_id)}


# --- create / get ----------------------------------------------------------------------------


def test_create_then_get_round_trips_document_keys_and_etag(store: Store) -> None:
    """get is a point read returning the stored document, its index keys and its etag."""
    doc, keys = user("alice", "ext-1", name={"givenName": "Alice"})
    created = store.create("User", doc, keys)
    got = store.get("User", doc["id"])
    assert got.doc == doc
    assert got.keys == {"userName": "alice", "externalId": "ext-1"}
    assert got.etag
    assert got.etag == created.etag


def test_get_missing_is_not_found(store: Store) -> None:
    """Failures raise, never return None."""
    with pytest.raises(NotFound):
        store.get("User", "no-such-id")


def test_returned_document_is_a_copy(store: Store) -> None:
    """Mutating the caller's or a returned document does not change the stored resource."""
    doc, keys = user("bob")
    created = store.create("User", doc, keys)
    doc["userName"] = "eve"
    created.doc["userName"] = "eve"
    store.get("User", doc["id"]).doc["userName"] = "eve"
    assert store.get("User", doc["id"]).doc["userName"] == "bob"


def test_duplicate_unique_key_is_a_uniqueness_conflict(store: Store) -> None:
    """RFC 7644 §3.3: a second resource with a taken userName gets 409 scimType uniqueness."""
    make_user(store, "alice")
    with pytest.raises(Conflict, match="userName") as caught:
        make_user(store, "alice")
    assert caught.value.scim_type == "uniqueness"
    assert len(list(store.scan("User"))) == 1


def test_duplicate_group_display_name_is_a_conflict(store: Store) -> None:
    """Group.displayName is unique too."""
    make_group(store, "admins")
    with pytest.raises(Conflict):
        make_group(store, "admins")


def test_duplicate_id_is_a_conflict(store: Store) -> None:
    doc, keys = user("alice")
    store.create("User", doc, keys)
    with pytest.raises(Conflict):
        store.create("User", {**doc, "userName": "bob"}, {"userName": "bob"})
    assert store.lookup("User", "userName", "bob") == []


def test_store_compares_normalised_values_exactly(store: Store) -> None:
    """Case handling is the service's job (it casefolds); the store compares exactly."""
    make_user(store, "alice")
    make_user(store, "Alice")
    assert len(store.lookup("User", "userName", "Alice")) == 1


def test_concurrent_creates_of_one_user_name_give_exactly_one_success(store: Store) -> None:
    """Concurrent creates of the same name: exactly one 201, the rest 409."""
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def attempt() -> None:
        doc, keys = user("race")
        start.wait()
        try:
            store.create("User", doc, keys)
            outcomes.append("created")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 19 + ["created"]
    [winner] = store.scan("User")
    assert store.lookup("User", "userName", "race") == [winner.id]


# --- replace ---------------------------------------------------------------------------------


def test_replace_changes_the_document_and_the_etag(store: Store) -> None:
    """meta.version derives from the stored etag, so every write changes it."""
    doc, keys = user("alice")
    first = store.create("User", doc, keys)
    second = store.replace("User", {**doc, "title": "CEO"}, keys, first.etag)
    assert second.etag != first.etag
    assert store.get("User", doc["id"]).etag == second.etag
    third = store.replace("User", {**doc, "title": "CTO"}, keys, second.etag)
    assert store.get("User", doc["id"]) == third


def test_replace_with_a_stale_etag_is_precondition_failed(store: Store) -> None:
    """RFC 7644 §3.14: every write is conditional on the etag it read (no lost updates)."""
    doc, keys = user("alice")
    first = store.create("User", doc, keys)
    store.replace("User", {**doc, "title": "A"}, keys, first.etag)
    with pytest.raises(PreconditionFailed):
        store.replace("User", {**doc, "title": "B"}, keys, first.etag)
    assert store.get("User", doc["id"]).doc["title"] == "A"


def test_replace_of_a_missing_resource_is_not_found(store: Store) -> None:
    doc, keys = user("ghost")
    created = store.create("User", doc, keys)
    store.delete("User", doc["id"])
    with pytest.raises(NotFound):
        store.replace("User", doc, keys, created.etag)


def test_rename_moves_the_unique_index(store: Store) -> None:
    """Rename = delete the old index row, insert the new one, atomically with the document."""
    doc, keys = user("old-name")
    created = store.create("User", doc, keys)
    renamed = store.replace(
        "User", {**doc, "userName": "new-name"}, {"userName": "new-name"}, created.etag
    )
    assert store.lookup("User", "userName", "old-name") == []
    assert store.lookup("User", "userName", "new-name") == [doc["id"]]
    assert renamed.keys == {"userName": "new-name"}
    make_user(store, "old-name")  # the old name is free again


def test_rename_onto_a_taken_name_is_a_conflict_and_changes_nothing(store: Store) -> None:
    make_user(store, "taken")
    doc, keys = user("mine")
    created = store.create("User", doc, keys)
    with pytest.raises(Conflict):
        store.replace("User", {**doc, "userName": "taken"}, {"userName": "taken"}, created.etag)
    assert store.lookup("User", "userName", "mine") == [doc["id"]]
    store.replace("User", {**doc, "title": "x"}, keys, created.etag)  # etag still current


def test_non_unique_index_maps_one_value_to_many_ids(store: Store) -> None:
    """externalId is not unique: lookup is one range query returning every id."""
    a = make_user(store, "a", "shared")
    b = make_user(store, "b", "shared")
    make_user(store, "c", "other")
    assert sorted(store.lookup("User", "externalId", "shared")) == sorted([a, b])
    assert store.lookup("User", "externalId", "absent") == []


def test_changing_external_id_moves_the_non_unique_index(store: Store) -> None:
    doc, keys = user("a", "before")
    created = store.create("User", doc, keys)
    store.replace("User", doc, {"userName": "a", "externalId": "after"}, created.etag)
    assert store.lookup("User", "externalId", "before") == []
    assert store.lookup("User", "externalId", "after") == [doc["id"]]


def test_unknown_index_is_a_programming_error(store: Store) -> None:
    with pytest.raises(ValueError, match="displayName"):
        store.lookup("User", "displayName", "x")


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_resource_and_frees_its_keys(store: Store) -> None:
    doc, keys = user("alice", "ext")
    store.create("User", doc, keys)
    store.delete("User", doc["id"])
    with pytest.raises(NotFound):
        store.get("User", doc["id"])
    assert store.lookup("User", "userName", "alice") == []
    assert store.lookup("User", "externalId", "ext") == []
    make_user(store, "alice")


def test_delete_with_a_stale_etag_is_precondition_failed(store: Store) -> None:
    doc, keys = user("alice")
    first = store.create("User", doc, keys)
    store.replace("User", doc, keys, first.etag)
    with pytest.raises(PreconditionFailed):
        store.delete("User", doc["id"], first.etag)
    store.get("User", doc["id"])


def test_delete_of_a_missing_resource_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.delete("User", "no-such-id")


# --- members ---------------------------------------------------------------------------------


def test_group_is_created_with_its_members(store: Store) -> None:
    u1, u2 = make_user(store, "u1"), make_user(store, "u2")
    gid = make_group(store, "g", [Member(u1, display="U1"), Member(u2)])
    assert sorted(store.list_members(gid), key=lambda m: m.value) == sorted(
        [Member(u1, "User", "U1"), Member(u2, "User", None)], key=lambda m: m.value
    )
    assert store.has_member(gid, u1)
    assert not store.has_member(gid, "stranger")
    assert store.groups_of(u1) == [gid]


def test_group_created_with_more_members_than_one_transaction_holds(store: Store) -> None:
    """An EGT holds 100 operations (three per member added): the rest go in further chunks."""
    ids = real(store, *(f"user-{n}" for n in range(130)))
    gid = make_group(store, "big", [Member(i) for i in ids])
    assert members_of(store, gid) == set(ids)


def test_member_add_is_idempotent_and_updates_display(store: Store) -> None:
    """PATCH add of an existing member is not an error (Entra re-sends adds)."""
    real(store, "u1", "u2")
    gid = make_group(store, "g", [Member("u1", display="old")])
    group = store.get("Group", gid)
    store.replace(
        "Group",
        group.doc,
        group.keys,
        group.etag,
        MemberChange(add=[Member("u1", display="new"), Member("u2")]),
    )
    assert sorted(store.list_members(gid), key=lambda m: m.value) == [
        Member("u1", "User", "new"),
        Member("u2"),
    ]


def test_member_remove_ignores_non_members(store: Store) -> None:
    """Removing a member that is already gone must not fail the rest of the change."""
    real(store, "u1", "u2", "u3")
    gid = make_group(store, "g", [Member("u1"), Member("u2"), Member("u3")])
    group = store.get("Group", gid)
    store.replace(
        "Group", group.doc, group.keys, group.etag, MemberChange(remove=["u1", "ghost", "u3"])
    )
    assert members_of(store, gid) == {"u2"}
    assert store.groups_of("u1") == []


def test_member_added_and_removed_in_one_change_ends_up_removed(store: Store) -> None:
    real(store, "u1", "u2")
    gid = make_group(store, "g", [Member("u1")])
    group = store.get("Group", gid)
    store.replace(
        "Group",
        group.doc,
        group.keys,
        group.etag,
        MemberChange(add=[Member("u1"), Member("u2")], remove=["u1"]),
    )
    assert members_of(store, gid) == {"u2"}


def test_replace_all_members(store: Store) -> None:
    """PUT /Groups/{id} replaces the whole member list."""
    real(store, "keep", "drop", "new")
    gid = make_group(store, "g", [Member("keep", display="K"), Member("drop")])
    group = store.get("Group", gid)
    change = MemberChange(replace_all=[Member("keep", display="K2"), Member("new")])
    store.replace("Group", group.doc, group.keys, group.etag, change)
    assert sorted(store.list_members(gid), key=lambda m: m.value) == [
        Member("keep", "User", "K2"),
        Member("new"),
    ]
    assert store.groups_of("drop") == []


def test_large_member_change_in_one_replace(store: Store) -> None:
    """k member changes are chunked into EGTs of at most 100 operations."""
    real(store, *(f"old-{n}" for n in range(60)), *(f"new-{n}" for n in range(120)))
    gid = make_group(store, "g", [Member(f"old-{n}") for n in range(60)])
    group = store.get("Group", gid)
    change = MemberChange(
        add=[Member(f"new-{n}") for n in range(120)], remove=[f"old-{n}" for n in range(60)]
    )
    store.replace("Group", group.doc, group.keys, group.etag, change)
    assert members_of(store, gid) == {f"new-{n}" for n in range(120)}


def test_member_change_with_a_stale_etag_changes_nothing(store: Store) -> None:
    """The first member EGT carries the group's If-Match, so a lost update changes no member."""
    gid = make_group(store, "g")
    group = store.get("Group", gid)
    store.replace("Group", {**group.doc, "x": 1}, group.keys, group.etag)
    with pytest.raises(PreconditionFailed):
        store.replace("Group", group.doc, group.keys, group.etag, MemberChange(add=[Member("u1")]))
    assert store.list_members(gid) == []


def test_nested_group_member(store: Store) -> None:
    child = make_group(store, "child")
    parent = make_group(store, "parent", [Member(child, type="Group")])
    assert store.list_members(parent) == [Member(child, "Group")]
    assert store.groups_of(child) == [parent]


def test_deleting_a_user_removes_its_memberships(store: Store) -> None:
    """Deleting a user removes its memberships."""
    uid = make_user(store, "leaver")
    real(store, "other")
    g1 = make_group(store, "g1", [Member(uid), Member("other")])
    g2 = make_group(store, "g2", [Member(uid)])
    store.delete("User", uid)
    assert members_of(store, g1) == {"other"}
    assert store.list_members(g2) == []
    assert not store.has_member(g1, uid)
    assert store.groups_of(uid) == []


def test_deleting_a_group_removes_member_and_reverse_rows(store: Store) -> None:
    uid = make_user(store, "member")
    parent = make_group(store, "parent")
    gid = make_group(store, "doomed", [Member(uid)])
    group = store.get("Group", parent)
    store.replace(
        "Group", group.doc, group.keys, group.etag, MemberChange(add=[Member(gid, "Group")])
    )
    store.delete("Group", gid)
    assert store.groups_of(uid) == []
    assert store.list_members(gid) == []
    assert store.list_members(parent) == []
    assert store.lookup("Group", "displayName", "doomed") == []


def test_scan_returns_documents_only(store: Store) -> None:
    """scan never returns index or membership rows."""
    u = make_user(store, "u", "e")
    g = make_group(store, "g", [Member(u)])
    assert [s.id for s in store.scan("User")] == [u]
    assert [s.id for s in store.scan("Group")] == [g]


# --- sizes and awkward keys ------------------------------------------------------------------


def test_big_document_round_trips(store: Store) -> None:
    """Resources up to the 1 MiB entity limit: the JSON is split over several properties."""
    doc, keys = user("big", blob="é" * 150_000 + "x" * 300_000)  # ~600 KB of UTF-8
    store.create("User", doc, keys)
    assert store.get("User", doc["id"]).doc == doc


def test_too_big_document_is_payload_too_large(store: Store) -> None:
    """Beyond the entity limit: a clear 413, and nothing is stored."""
    doc, keys = user("huge", blob="x" * 1_100_000)
    with pytest.raises(PayloadTooLarge):
        store.create("User", doc, keys)
    assert store.lookup("User", "userName", "huge") == []


def test_both_stores_draw_the_size_line_in_the_same_place() -> None:
    assert memory.MAX_DOCUMENT_BYTES == documents.MAX_DOCUMENT_BYTES


@pytest.mark.parametrize(
    "value",
    [
        "guest_example.com#EXT#@tenant.onmicrosoft.com",
        "a/b\\c#d?e",
        "tab\tnew\nline\x00",
        "ünï©ødé",
        "x" * 2000,
    ],
    ids=["entra-guest-upn", "forbidden-chars", "control-chars", "non-ascii", "very-long"],
)
def test_awkward_values_work_as_keys_and_ids(store: Store, value: str) -> None:
    """Table keys forbid / \\ # ? and control characters; Entra guest UPNs contain #EXT#."""
    doc = {"id": value, "userName": value}
    store.create("User", doc, {"userName": value, "externalId": value})
    assert store.get("User", value).doc == doc
    assert store.lookup("User", "userName", value) == [value]
    assert store.lookup("User", "externalId", value) == [value]
    gid = make_group(store, value, [Member(value)])
    assert store.has_member(gid, value)
    assert store.groups_of(value) == [gid]
    store.delete("User", value)
    assert store.lookup("User", "userName", value) == []


# --- state and bulk load ---------------------------------------------------------------------


def test_state_create_and_conditional_update(store: Store) -> None:
    """Graph delta links and checkpoints are ETag-guarded."""
    assert store.get_state("users/delta") is None
    etag = store.put_state("users/delta", {"deltaLink": "https://graph/x?$deltatoken=1"}, None)
    with pytest.raises(Conflict):
        store.put_state("users/delta", {"deltaLink": "other"}, None)
    new_etag = store.put_state("users/delta", {"deltaLink": "2"}, etag)
    with pytest.raises(PreconditionFailed):
        store.put_state("users/delta", {"deltaLink": "3"}, etag)
    assert store.get_state("users/delta") == ({"deltaLink": "2"}, new_etag)


def test_bulk_load(store: Store) -> None:
    """Seeding packs many resources per transaction; the result is as if created one by one."""
    items = [user(f"user-{n:04}", f"ext-{n % 10}") for n in range(250)]
    assert store.bulk_load("User", items) == 250
    assert len(list(store.scan("User"))) == 250
    assert store.lookup("User", "userName", "user-0123") == [items[123][0]["id"]]
    assert len(store.lookup("User", "externalId", "ext-3")) == 25
    with pytest.raises(Conflict):
        make_user(store, "user-0007")


# --- Table-specific layout -------------------------------------------------------------------


def row_keys(store: TableStore, table_name: str) -> list[str]:
    client = store.service.get_table_client(table_name)
    return sorted(e["RowKey"].split("|")[0] for e in client.list_entities(select=["RowKey"]))


def test_table_rename_and_failed_creates_leave_no_orphan_rows(table_store: TableStore) -> None:
    """No orphan index rows after renames and failed creates."""
    doc, keys = user("a", "e1")
    created = table_store.create("User", doc, keys)
    table_store.replace(
        "User", {**doc, "userName": "b"}, {"userName": "b", "externalId": "e2"}, created.etag
    )
    with pytest.raises(Conflict):
        make_user(table_store, "b", "e3")
    users = table_store.table_names[0]
    assert row_keys(table_store, users) == ["externalId", "id", "userName"]


class Busy(BaseHTTPRequestHandler):
    """Answers every request like a throttling storage account."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "7")
        self.send_header("x-ms-error-code", "ServerBusy")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def busy_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{ACCOUNT_NAME}"
    server.shutdown()
    server.server_close()


def connection_string(endpoint: str) -> str:
    return f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};TableEndpoint={endpoint};"


def test_throttling_is_service_unavailable_with_retry_after(busy_endpoint: str) -> None:
    """503 ServerBusy / 429 from storage -> SCIM 503 carrying the service's Retry-After."""
    store = TableStore.from_connection_string(connection_string(busy_endpoint), retry_total=0)
    with pytest.raises(ServiceUnavailable) as caught:
        store.get("User", "x")
    assert caught.value.retry_after == 7
    with pytest.raises(ServiceUnavailable):
        store.create("User", *user("a"))


def test_unreachable_storage_is_service_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/{ACCOUNT_NAME}"
    store = TableStore.from_connection_string(connection_string(endpoint), retry_total=0)
    with pytest.raises(ServiceUnavailable):
        store.lookup("User", "userName", "a")
