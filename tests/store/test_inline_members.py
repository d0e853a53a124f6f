"""``Stored.members``: a small group's members handed back with its document (store.py).

The contract, on both stores: ``members`` is either ``None`` or exactly what ``list_members``
returns, after any sequence of member changes, deletes of members, and growth past
``INLINE_MEMBERS``. TableStore keeps the list on the group's entity; these tests also pin what
that buys in storage requests and how it recovers when the list is not known.
"""

from __future__ import annotations

import random
import uuid

import pytest
from azure.data.tables import UpdateMode

from scim_core.store import INLINE_MEMBERS, Member, MemberChange, Store, Stored
from scim_core.store.documents import encode_key
from scim_core.store.table import TableStore
from tests.store.test_contract import make_user


def _group(store: Store, members: list[Member] | None = None) -> Stored:
    gid = str(uuid.uuid4())
    doc = {"id": gid, "displayName": f"g-{gid}", "meta": {"resourceType": "Group"}}
    return store.create("Group", doc, {"displayName": f"g-{gid}"}, members or [])


def _user(store: Store) -> str:
    return make_user(store, f"{uuid.uuid4()}@x.com")


def _change(store: Store, gid: str, change: MemberChange) -> Stored:
    current = store.get("Group", gid)
    return store.replace("Group", current.doc, current.keys, current.etag, change)


def _assert_consistent(store: Store, stored: Stored) -> None:
    if stored.members is not None:
        assert stored.members == store.list_members(stored.id)
        assert len(stored.members) <= INLINE_MEMBERS


def test_small_group_members_come_with_create_get_and_replace(store: Store) -> None:
    a, b, c = (Member(_user(store), display=n) for n in "abc")
    created = _group(store, [a, b])
    assert created.members is not None
    assert {m.value for m in created.members} == {a.value, b.value}
    _assert_consistent(store, created)
    got = store.get("Group", created.id)
    assert got.members == store.list_members(created.id)
    changed = _change(store, created.id, MemberChange(add=[c], remove=[a.value]))
    assert changed.members is not None
    assert {m.value for m in changed.members} == {b.value, c.value}
    _assert_consistent(store, changed)
    _assert_consistent(store, store.get("Group", created.id))


def test_group_past_the_limit_is_read_from_membership_rows(store: Store) -> None:
    created = _group(store)
    many = [Member(_user(store)) for i in range(INLINE_MEMBERS + 1)]
    for start in range(0, len(many), 40):
        _change(store, created.id, MemberChange(add=many[start : start + 40]))
    grown = store.get("Group", created.id)
    assert grown.members is None
    assert len(store.list_members(created.id)) == INLINE_MEMBERS + 1
    shrunk = _change(store, created.id, MemberChange(remove=[many[0].value]))
    _assert_consistent(store, shrunk)  # None or exact: either keeps the contract


def test_deleting_a_member_never_leaves_it_listed(store: Store) -> None:
    uid, other = _user(store), _user(store)
    created = _group(store, [Member(uid), Member(other)])
    nested = _group(store)
    outer = _group(store, [Member(nested.id, "Group"), Member(uid)])
    store.delete("User", uid)
    store.delete("Group", nested.id)
    for gid in (created.id, outer.id):
        got = store.get("Group", gid)
        _assert_consistent(store, got)
        assert uid not in {m.value for m in store.list_members(gid)}
    assert [m.value for m in store.list_members(created.id)] == [other]
    assert store.list_members(outer.id) == []
    # The next change of a group whose list was invalidated learns it again, correctly; and
    # adding the deleted user (a request that raced its delete) never lists it.
    fresh = _user(store)
    after = _change(store, created.id, MemberChange(add=[Member(uid), Member(fresh)]))
    _assert_consistent(store, after)
    assert {m.value for m in store.list_members(created.id)} == {fresh, other}
    assert store.groups_of(uid) == []


def test_random_histories_keep_the_contract(store: Store) -> None:
    """Random member changes, replace-alls and deletes of members on a few groups; after every
    step each group's ``members`` is None or exact (seeded: the same history every run)."""
    rng = random.Random(20261123)
    seen = {"known": 0, "not known": 0}
    users = [_user(store) for _ in range(8)]
    groups = [_group(store).id for _ in range(3)]
    for _step in range(60):
        gid = rng.choice(groups)
        kind = rng.random()
        if kind < 0.45:
            adds = [Member(u, display=rng.choice([None, "x"])) for u in rng.sample(users, 3)]
            removes = rng.sample(users, rng.randint(0, 2))
            _change(store, gid, MemberChange(add=adds, remove=removes))
        elif kind < 0.6:
            keep = [Member(u) for u in rng.sample(users, rng.randint(0, 4))]
            _change(store, gid, MemberChange(replace_all=keep))
        elif kind < 0.75:
            # a big change: more pairs than one transaction holds
            bulk = [Member(_user(store)) for _ in range(rng.randint(45, 60))]
            _change(store, gid, MemberChange(add=bulk))
            _change(store, gid, MemberChange(remove=[m.value for m in bulk]))
        elif kind < 0.9 and users:
            gone = users.pop(rng.randrange(len(users)))
            store.delete("User", gone)
            users.append(_user(store))
        else:
            _change(store, gid, MemberChange())  # a change of the document only
        for g in groups:
            got = store.get("Group", g)
            _assert_consistent(store, got)
            seen["known" if got.members is not None else "not known"] += 1
    # The history reaches both states (TableStore: invalidated lists and multi-EGT changes).
    assert seen["known"] > 20
    if isinstance(store, TableStore):
        assert seen["not known"] > 5


def test_table_delete_of_a_member_marks_its_groups_without_reading_them(
    table_store: TableStore,
) -> None:
    uid = _user(table_store)
    groups = [_group(table_store, [Member(uid)]) for _ in range(3)]
    before = table_store.request_count
    table_store.delete("User", uid)
    # its keys, its liveness row's transaction, its reverse rows, one transaction for the three
    # groups' membership rows and marks, and the document's transaction: no read of any group
    assert table_store.request_count - before == 5
    for group in groups:
        got = table_store.get("Group", group.id)
        assert got.members is None and got.etag != group.etag
        assert table_store.list_members(group.id) == []


def test_table_member_patch_of_a_small_group_is_two_requests(table_store: TableStore) -> None:
    created = _group(table_store, [Member(_user(table_store))])
    joiner = Member(_user(table_store))
    before = table_store.request_count
    current = table_store.get("Group", created.id)
    new = table_store.replace(
        "Group", current.doc, current.keys, current.etag, MemberChange(add=[joiner])
    )
    assert table_store.request_count - before == 2  # get + one transaction
    assert new.members is not None and len(new.members) == 2


def test_table_re_adding_a_known_member_writes_no_membership_rows(
    table_store: TableStore,
) -> None:
    member = Member(_user(table_store), display="same")
    created = _group(table_store, [member])
    before = table_store.request_count
    _change(table_store, created.id, MemberChange(add=[member], remove=[str(uuid.uuid4())]))
    # get + the document's transaction; no point read for the absent member's removal
    assert table_store.request_count - before == 2


def test_table_group_written_before_inline_lists_is_learned_once(table_store: TableStore) -> None:
    """A group entity without the inline properties (written by an earlier version) answers
    ``None``; its next member change reads the members once (bounded) and keeps them."""
    m1, m2 = Member(_user(table_store)), Member(_user(table_store))
    created = _group(table_store, [m1])
    client = table_store._tables["groups"]
    entity = client.get_entity("Group", f"id|{encode_key(created.id)}")
    legacy = {k: v for k, v in entity.items() if k not in ("mi", "ml")}
    client.update_entity(legacy, mode=UpdateMode.REPLACE)
    old = table_store.get("Group", created.id)
    assert old.members is None
    before = table_store.request_count
    new = table_store.replace("Group", old.doc, old.keys, old.etag, MemberChange(add=[m2]))
    assert table_store.request_count - before == 2  # bounded member read + transaction
    assert new.members is not None and {m.value for m in new.members} == {m1.value, m2.value}
    assert table_store.get("Group", created.id).members == table_store.list_members(created.id)


def test_table_change_over_several_transactions_keeps_the_list(table_store: TableStore) -> None:
    """60 adds take two EGTs; the list lands in the second, so the next add is still get +
    one transaction (no re-read of the members)."""
    created = _group(table_store, [Member(_user(table_store))])
    more = [Member(_user(table_store)) for _ in range(60)]
    before = table_store.request_count
    grown = _change(table_store, created.id, MemberChange(add=more))
    assert table_store.request_count - before == 1 + 2
    assert grown.members is not None and len(grown.members) == 61
    _assert_consistent(table_store, grown)
    got = table_store.get("Group", created.id)
    assert got.etag == grown.etag and got.members == grown.members
    joiner = Member(_user(table_store))
    before = table_store.request_count
    _change(table_store, created.id, MemberChange(add=[joiner]))
    assert table_store.request_count - before == 2


def test_table_list_is_not_kept_if_the_group_changed_between_transactions(
    table_store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another write of the group between the first and the last EGT of a change: the rows all
    land, the list does not (its members are "not known", never wrong)."""
    created = _group(table_store)
    client = table_store._tables["groups"]
    row_key = f"id|{encode_key(created.id)}"
    real_submit = table_store._submit
    calls = []

    def submit(table: str, ops: list, what: str, conflict: str | None = None) -> list:
        calls.append(len(ops))
        finishing = any(op[0] == "update" and op[1].get("mi") not in (None, b"~") for op in ops)
        if len(calls) > 1 and finishing:  # right before the last EGT: someone else writes
            client.update_entity(
                {"PartitionKey": "Group", "RowKey": row_key, "other": "x"}, mode=UpdateMode.MERGE
            )
        return real_submit(table, ops, what, conflict)

    more = [Member(_user(table_store)) for _ in range(70)]
    monkeypatch.setattr(table_store, "_submit", submit)
    changed = _change(table_store, created.id, MemberChange(add=more))
    monkeypatch.undo()
    assert changed.members is None
    assert {m.value for m in table_store.list_members(created.id)} == {m.value for m in more}
    assert table_store.get("Group", created.id).members is None


def test_table_member_change_between_the_transactions_of_another_keeps_the_contract(
    table_store: TableStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second writer changes the group while a change of 70 members (two EGTs) is half
    done: it sees the group's members "not known", reads the rows written so far and keeps a
    list of them. The rest of the first change must not leave that list standing without its
    own rows: every EGT that writes a group's membership rows also writes the group."""
    created = _group(table_store, [Member(_user(table_store))])
    real_submit = table_store._submit
    calls: list[int] = []
    late = Member(_user(table_store))

    def submit(table: str, ops: list, what: str, conflict: str | None = None) -> list:
        result = real_submit(table, ops, what, conflict)
        calls.append(len(ops))
        if len(calls) == 1:  # right after the first EGT of the big change
            monkeypatch.setattr(table_store, "_submit", real_submit)
            _change(table_store, created.id, MemberChange(add=[late]))
            monkeypatch.setattr(table_store, "_submit", submit)
        return result

    monkeypatch.setattr(table_store, "_submit", submit)
    many = [Member(_user(table_store)) for _ in range(70)]
    current = table_store.get("Group", created.id)
    changed = table_store.replace(
        "Group", current.doc, current.keys, current.etag, MemberChange(add=many)
    )
    monkeypatch.undo()
    _assert_consistent(table_store, changed)
    got = table_store.get("Group", created.id)
    _assert_consistent(table_store, got)
    assert {m.value for m in table_store.list_members(created.id)} >= {
        late.value,
        *(m.value for m in many),
    }
