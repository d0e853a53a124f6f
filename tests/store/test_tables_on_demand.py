"""``TableStore(tables_on_demand=True)`` (the local wiring, over Azurite): no request is spent on
tables at start; reads of a missing table find nothing, and the first write creates the tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devhost.azurite import Azurite
from scim_core.errors import NotFound
from scim_core.store import Member, MemberChange
from scim_core.store.table import TableStore
from tests.store.test_contract import user


@pytest.fixture
def fresh(azurite: Azurite) -> Iterator[TableStore]:
    prefix = "d" + uuid.uuid4().hex[:12]
    store = TableStore.from_connection_string(
        azurite.connection_string, table_prefix=prefix, tables_on_demand=True
    )
    yield store
    for name in store.table_names:
        store.service.delete_table(name)  # no error if it was never created
    store.close()


def _user(n: int) -> tuple[dict[str, Any], dict[str, str | None]]:
    return user(f"u{n}@x.com", f"e{n}")


def _existing(store: TableStore) -> set[str]:
    return {t.name for t in store.service.list_tables()} & set(store.table_names)


def test_reads_of_missing_tables_find_nothing(fresh: TableStore) -> None:
    with pytest.raises(NotFound):
        fresh.get("User", str(uuid.uuid4()))
    assert fresh.lookup("User", "userName", "nobody@x.com") == []
    assert fresh.lookup("User", "externalId", "nobody") == []
    assert list(fresh.scan("Group")) == []
    assert fresh.list_members(str(uuid.uuid4())) == []
    assert fresh.list_members(str(uuid.uuid4()), limit=99) == []
    assert fresh.groups_of(str(uuid.uuid4())) == []
    assert fresh.has_member(str(uuid.uuid4()), str(uuid.uuid4())) is False
    assert fresh.get_state("delta") is None
    assert _existing(fresh) == set()  # reading created nothing


def test_first_write_creates_the_tables(fresh: TableStore) -> None:
    doc, keys = _user(1)
    created = fresh.create("User", doc, keys)
    assert _existing(fresh) == set(fresh.table_names)
    assert fresh.get("User", created.id).doc["userName"] == "u1@x.com"
    assert fresh.lookup("User", "externalId", "e1") == [created.id]


def test_first_write_may_be_a_state_record(fresh: TableStore) -> None:
    etag = fresh.put_state("delta", {"link": "x"}, None)
    assert fresh.get_state("delta") == ({"link": "x"}, etag)


def test_concurrent_first_writes_all_land(fresh: TableStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda n: fresh.create("User", *_user(n)), range(16)))
    assert sorted(fresh.get("User", s.id).doc["userName"] for s in created) == sorted(
        f"u{n}@x.com" for n in range(16)
    )


def test_group_member_change_after_creation_on_demand(fresh: TableStore) -> None:
    gid = str(uuid.uuid4())
    group = fresh.create("Group", {"id": gid, "displayName": "g", "meta": {}}, {"displayName": "g"})
    member = Member(fresh.create("User", *_user(2)).id)
    fresh.replace("Group", group.doc, group.keys, group.etag, MemberChange(add=[member]))
    assert fresh.list_members(gid) == [member]


def test_without_on_demand_a_missing_table_is_not_created(azurite: Azurite) -> None:
    store = TableStore.from_connection_string(
        azurite.connection_string, table_prefix="n" + uuid.uuid4().hex[:12]
    )
    try:
        with pytest.raises(NotFound):
            store.create("User", *_user(1))
        assert _existing(store) == set()
    finally:
        store.close()
