"""A group never lists a member that does not exist (store/membership.py, liveness rows).

Seen before: deleting a user while Entra's parallel workers add it to a group left the group
listing the deleted user for good; so did a PATCH adding a user deleted moments before, and a
crash between a delete and its membership cleanup. Checked here on both stores, with the
store's real concurrency on Azurite, and with a crash injected at every step of a delete.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from scim_core.errors import NotFound, PreconditionFailed
from scim_core.store import Member, MemberChange, Store
from scim_core.store.table import TableStore
from tests.store.test_contract import make_group, make_user


def add(store: Store, group_id: str, *member_ids: str) -> None:
    """A member PATCH as the service runs it: read, write conditionally, retry a lost race."""
    for _ in range(20):
        group = store.get("Group", group_id)
        change = MemberChange(add=[Member(m) for m in member_ids])
        try:
            store.replace("Group", group.doc, group.keys, group.etag, change)
            return
        except PreconditionFailed:
            continue
    raise AssertionError("the add kept losing races")


def assert_no_ghosts(store: Store, *group_ids: str) -> None:
    """Every member a group lists (rows, inline list, membership checks) exists, and every
    reverse row names an existing group."""
    for gid in group_ids:
        listed = store.list_members(gid)
        inline = store.get("Group", gid).members
        for member in [*listed, *(inline or [])]:
            store.get(member.type, member.value)  # raises NotFound for a ghost
        if inline is not None:
            assert inline == listed


def gone(store: Store, rtype: str, rid: str) -> bool:
    try:
        store.get(rtype, rid)
    except NotFound:
        return True
    return False


def test_a_member_that_never_existed_is_not_kept(store: Store) -> None:
    real = make_user(store, "real@x.com")
    gid = make_group(store, "g", [Member(real), Member(str(uuid.uuid4()))])
    add(store, gid, str(uuid.uuid4()), "not-even-a-uuid")
    assert [m.value for m in store.list_members(gid)] == [real]
    assert_no_ghosts(store, gid)


def test_adding_a_user_deleted_moments_before_is_not_kept(store: Store) -> None:
    leaver, stayer = make_user(store, "leaver@x.com"), make_user(store, "stayer@x.com")
    gid = make_group(store, "g", [Member(stayer)])
    store.delete("User", leaver)
    add(store, gid, leaver)
    group = store.get("Group", gid)
    store.replace(
        "Group",
        group.doc,
        group.keys,
        group.etag,
        MemberChange(replace_all=[Member(leaver), Member(stayer)]),
    )
    assert [m.value for m in store.list_members(gid)] == [stayer]
    assert not store.has_member(gid, leaver) and store.groups_of(leaver) == []
    assert_no_ghosts(store, gid)


def test_a_deleted_group_is_not_kept_as_a_member(store: Store) -> None:
    inner = make_group(store, "inner")
    outer = make_group(store, "outer", [Member(inner, "Group")])
    store.delete("Group", inner)
    add(store, outer, inner)  # type "User" by default: no such user either
    group = store.get("Group", outer)
    change = MemberChange(add=[Member(inner, "Group")])
    store.replace("Group", group.doc, group.keys, group.etag, change)
    assert store.list_members(outer) == []
    assert_no_ghosts(store, outer)


@pytest.mark.parametrize("round_", range(12))
def test_concurrent_delete_and_adds_leave_no_ghost(table_store: TableStore, round_: int) -> None:
    """Entra's parallel workers: one deletes a user while others add it to groups (small and
    past the inline limit), all released at once; whichever commits first, no group lists the
    deleted user afterwards."""
    victim = make_user(table_store, f"victim{round_}@x.com")
    fillers = [make_user(table_store, f"f{round_}-{n}@x.com") for n in range(3)]
    groups = [
        make_group(table_store, f"g{round_}-{n}", [Member(f) for f in fillers]) for n in range(4)
    ]
    start = threading.Barrier(1 + len(groups))
    errors: list[BaseException] = []

    def run(action: Any) -> None:
        try:
            start.wait()
            action()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lambda: table_store.delete("User", victim),))]
    threads += [
        threading.Thread(target=run, args=(lambda g=g: add(table_store, g, victim),))
        for g in groups
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert gone(table_store, "User", victim)
    for gid in groups:
        assert victim not in {m.value for m in table_store.list_members(gid)}
        assert not table_store.has_member(gid, victim)
    assert table_store.groups_of(victim) == []
    assert_no_ghosts(table_store, *groups)


class Crash(Exception):
    """Stands for the process dying at this point."""


@pytest.mark.parametrize("if_match", [False, True], ids=["plain", "if-match"])
@pytest.mark.parametrize("step", [0, 1, 2], ids=["first-write", "after-liveness", "after-sweep"])
def test_a_crash_at_any_step_of_a_delete_leaves_no_ghost(
    table_store: TableStore, monkeypatch: pytest.MonkeyPatch, step: int, if_match: bool
) -> None:
    """The delete's storage writes stop after ``step`` of them (0: none lands, 1: the liveness
    row went, 2: the membership sweep landed and the document's transaction never does). No
    group lists a user that does not exist; a retried DELETE finishes the job."""
    victim = make_user(table_store, "victim@x.com")
    other = make_user(table_store, "other@x.com")
    groups = [make_group(table_store, f"g{n}", [Member(victim), Member(other)]) for n in range(3)]
    real_submit = table_store._submit
    writes: list[int] = []

    def submit(table: str, ops: list[Any], what: str, conflict: str | None = None) -> Any:
        writes.append(len(ops))
        if len(writes) > step:
            raise Crash()
        return real_submit(table, ops, what, conflict)

    etag = table_store.get("User", victim).etag if if_match else None
    monkeypatch.setattr(table_store, "_submit", submit)
    with pytest.raises(Crash):
        table_store.delete("User", victim, etag)
    monkeypatch.undo()
    assert_no_ghosts(table_store, *groups)
    table_store.delete("User", victim, etag)  # Entra retries the failed DELETE
    assert gone(table_store, "User", victim)
    for gid in groups:
        assert [m.value for m in table_store.list_members(gid)] == [other]
    assert table_store.groups_of(victim) == []
    assert_no_ghosts(table_store, *groups)


def test_an_if_match_delete_that_loses_a_race_changes_nothing(table_store: TableStore) -> None:
    """A 412 after the sweep: the user is revived and its memberships written back."""
    victim = make_user(table_store, "victim@x.com")
    gid = make_group(table_store, "g", [Member(victim)])
    stale = table_store.get("User", victim)
    fresh = table_store.replace("User", {**stale.doc, "title": "x"}, stale.keys, stale.etag)
    with pytest.raises(PreconditionFailed):
        table_store.delete("User", victim, stale.etag)
    assert [m.value for m in table_store.list_members(gid)] == [victim]
    add(table_store, make_group(table_store, "h"), victim)  # still alive: it can join groups
    table_store.delete("User", victim, fresh.etag)
    assert table_store.list_members(gid) == []


def test_a_resource_created_before_liveness_rows_joins_once_revived(
    table_store: TableStore,
) -> None:
    """Instances upgraded in place hold users without liveness rows: the first add reads the
    user and gives it its rows; a deleted one can never be revived that way."""
    legacy = make_user(table_store, "legacy@x.com")
    groups = table_store._tables["groups"]
    for key in ("a|", "z|"):
        groups.delete_entity("Group", key + table_store_key(legacy))
    gid = make_group(table_store, "g")
    add(table_store, gid, legacy)
    assert [m.value for m in table_store.list_members(gid)] == [legacy]
    table_store.delete("User", legacy)
    add(table_store, gid, legacy)
    assert table_store.list_members(gid) == []


def table_store_key(resource_id: str) -> str:
    from scim_core.store.documents import encode_key

    return encode_key(resource_id)


def test_an_if_match_group_delete_that_loses_a_race_restores_both_ways(
    table_store: TableStore,
) -> None:
    """A group with its own members, itself a member of another group: a refused If-Match
    delete writes back both kinds of rows, and the group can still change its members."""
    users = [make_user(table_store, f"m{n}@x.com") for n in range(3)]
    inner = make_group(table_store, "inner", [Member(u) for u in users])
    outer = make_group(table_store, "outer", [Member(inner, "Group")])
    stale = table_store.get("Group", inner)
    table_store.replace("Group", {**stale.doc, "x": 1}, stale.keys, stale.etag)
    with pytest.raises(PreconditionFailed):
        table_store.delete("Group", inner, stale.etag)
    assert {m.value for m in table_store.list_members(inner)} == set(users)
    assert table_store.groups_of(inner) == [outer] and table_store.has_member(outer, inner)
    assert_no_ghosts(table_store, inner, outer)
    add(table_store, inner, make_user(table_store, "late@x.com"))
    assert len(table_store.list_members(inner)) == 4
