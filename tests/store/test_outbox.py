"""The transactional outbox, on both stores: rows commit with their change or not at all, read in
key order, one resource's event keys grow in commit order, conditional removal."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scim_core.errors import Conflict, NotFound, PreconditionFailed
from scim_core.store import Member, MemberChange, Outbox, Store
from scim_core.store.protocol import event_key, stamp
from scim_core.store.table import TableStore


def _user(id_: str, name: str, when: str = "2026-01-01T00:00:00.000000Z") -> dict[str, Any]:
    return {"id": id_, "userName": name, "meta": {"lastModified": when}}


def _keys(name: str, when: str = "2026-01-01T00:00:00.000000Z") -> dict[str, str | None]:
    return {"userName": name, "lm": when}


def _event(what: str) -> Outbox:
    return Outbox("ev", None, {"what": what})


def _all(store: Store, rtype: str, queue: str) -> list[Any]:
    out, after = [], None
    while True:
        page = store.outbox_read(rtype, queue, 7, after)
        if not page:
            return out
        out += page
        after = page[-1].key


def test_rows_commit_with_create_replace_and_delete(store: Store) -> None:
    created = store.create("User", _user("u1", "a"), _keys("a"), outbox=[_event("create")])
    new = store.replace("User", _user("u1", "b"), _keys("b"), created.etag, outbox=[_event("put")])
    store.delete("User", "u1", new.etag, outbox=[_event("delete")])
    assert [e.body["what"] for e in _all(store, "User", "ev")] == ["create", "put", "delete"]


@pytest.mark.parametrize(
    "refused",
    ["duplicate-userName", "stale-replace", "stale-delete", "missing-delete"],
)
def test_a_refused_write_leaves_no_row(store: Store, refused: str) -> None:
    first = store.create("User", _user("u1", "taken"), _keys("taken"))
    store.replace("User", _user("u1", "taken"), _keys("taken"), first.etag)  # first.etag stale
    writes = {
        "duplicate-userName": lambda: store.create(
            "User", _user("u2", "taken"), _keys("taken"), outbox=[_event("x")]
        ),
        "stale-replace": lambda: store.replace(
            "User", _user("u1", "z"), _keys("z"), first.etag, outbox=[_event("x")]
        ),
        "stale-delete": lambda: store.delete("User", "u1", first.etag, outbox=[_event("x")]),
        "missing-delete": lambda: store.delete("User", "nobody", None, outbox=[_event("x")]),
    }
    with pytest.raises((Conflict, PreconditionFailed, NotFound)):
        writes[refused]()
    assert _all(store, "User", "ev") == []


def test_group_rows_go_with_the_group_and_its_member_change(store: Store) -> None:
    store.create("User", _user("u1", "a"), _keys("a"))
    group = store.create(
        "Group",
        {"id": "g1", "displayName": "g"},
        {"displayName": "g"},
        [Member("u1")],
        outbox=[_event("create")],
    )
    many = [Member(f"x{n}") for n in range(40)]  # not alive: dropped, the change still lands
    store.replace(
        "Group",
        {"id": "g1", "displayName": "g"},
        {"displayName": "g"},
        group.etag,
        MemberChange(remove=["u1"], add=many),
        outbox=[_event("patch")],
    )
    assert [e.body["what"] for e in _all(store, "Group", "ev")] == ["create", "patch"]
    assert _all(store, "User", "ev") == []


def test_one_resources_event_keys_grow_in_commit_order_even_if_its_clock_goes_back(
    store: Store,
) -> None:
    later, earlier = "2026-06-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"
    created = store.create("User", _user("u1", "a", later), _keys("a", later), outbox=[_event("1")])
    # An instance whose clock is behind writes the next version: its key still sorts after.
    store.replace(
        "User",
        _user("u1", "a", earlier),
        _keys("a", earlier),
        created.etag,
        outbox=[_event("2")],
    )
    rows = _all(store, "User", "ev")
    assert [e.body["what"] for e in rows] == ["1", "2"]
    assert rows[0].key < rows[1].key


def test_concurrent_writers_of_one_resource_leave_events_in_commit_order(store: Store) -> None:
    """Eight threads each PATCH one user 5 times (read-modify-write, retried on 412): the
    events, in key order, carry the versions in the order they committed."""
    store.create("User", _user("u1", "a"), _keys("a"))
    committed: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for step in range(5):
            while True:
                current = store.get("User", "u1")
                seq = int(current.doc.get("seq", 0)) + 1
                doc = {**current.doc, "seq": seq}
                try:
                    store.replace(
                        "User",
                        doc,
                        {**current.keys, "lm": stamp_now()},
                        current.etag,
                        outbox=[Outbox("ev", None, {"seq": seq, "by": n, "step": step})],
                    )
                except PreconditionFailed:
                    continue
                with lock:
                    committed.append(seq)
                break

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [e.body["seq"] for e in _all(store, "User", "ev")]
    assert seqs == list(range(1, 41))
    assert sorted(committed) == seqs


def stamp_now() -> str:
    from datetime import UTC, datetime

    return stamp(datetime.now(UTC))


def test_read_pages_after_a_key_and_remove_is_conditional(store: Store) -> None:
    store.outbox_put("User", [Outbox("wb", f"k{n:02}", {"n": n}) for n in range(12)])
    first = store.outbox_read("User", "wb", 5)
    assert [e.key for e in first] == [f"k{n:02}" for n in range(5)]
    assert [e.key for e in store.outbox_read("User", "wb", 3, "k04")] == ["k05", "k06", "k07"]
    # k01 is rewritten after it was read: removing the version read keeps it.
    store.outbox_put("User", [Outbox("wb", "k01", {"n": "new"})])
    removed = store.outbox_remove("User", "wb", [(e.key, e.etag) for e in first] + [("gone", None)])
    assert removed == 4
    left = _all(store, "User", "wb")
    assert [e.key for e in left] == ["k01", *[f"k{n:02}" for n in range(5, 12)]]
    assert left[0].body == {"n": "new"}
    assert store.outbox_remove("User", "wb", [("k01", None)]) == 1


def test_replace_rows_coalesce_and_new_rows_must_be_new(store: Store) -> None:
    created = store.create(
        "User", _user("u1", "a"), _keys("a"), outbox=[Outbox("wb", "u1", {"v": 1}, replace=True)]
    )
    store.replace(
        "User",
        _user("u1", "a"),
        _keys("a"),
        created.etag,
        outbox=[Outbox("wb", "u1", {"v": 2}, replace=True)],
    )
    assert [(e.key, e.body) for e in _all(store, "User", "wb")] == [("u1", {"v": 2})]
    current = store.get("User", "u1")
    with pytest.raises(Conflict):
        store.replace(
            "User", _user("u1", "b"), _keys("b"), current.etag, outbox=[Outbox("wb", "u1", {})]
        )
    assert store.get("User", "u1").doc["userName"] == "a"  # the change did not land either


def test_queues_are_apart_and_no_resource_row_is_read(store: Store) -> None:
    store.create("User", _user("u1", "a"), _keys("a"), outbox=[_event("e"), Outbox("en", "u1", {})])
    assert [e.body for e in _all(store, "User", "en")] == [{}]
    assert len(_all(store, "User", "ev")) == 1
    assert [s.id for s in store.scan("User")] == ["u1"]  # the rows are not resources


def test_a_read_is_one_request_whatever_the_backlog(table_store: TableStore) -> None:
    table_store.outbox_put(
        "User", [Outbox("ev", event_key(None, None), {"n": n}) for n in range(1500)]
    )
    before = table_store.request_count
    page = table_store.outbox_read("User", "ev", 100)
    assert len(page) == 100
    assert table_store.request_count - before == 1


@pytest.mark.parametrize(
    "bad", ["", "UPPER", "toolongname", "a|b"], ids=["empty", "upper", "long", "bar"]
)
def test_bad_queue_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="queue names"):
        Outbox(bad, "k", {})


@pytest.mark.parametrize("bad", ["", "a/b", "a#b", "a?b", "a\\b", "a\nb", "x" * 257])
def test_bad_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="outbox key"):
        Outbox("ev", bad, {})
