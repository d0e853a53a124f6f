"""List pages through the service on both stores: index pagination (RFC 7644 §3.4.2.4), cursor
pagination (RFC 9865), the bound on scans (RFC 7644 §3.4.2.2 tooMany) and what each page costs
in storage requests on Table Storage."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from scim_core.http import ScimRequest
from scim_core.service import ScimService
from scim_core.store import Store
from scim_core.store.table import TableStore
from tests.store.test_contract import user

BASE = "https://scim.example/scim/v2"


def seed(store: Store, n: int, prefix: str = "user") -> list[str]:
    items = []
    for k in range(n):
        doc, keys = user(f"{prefix}-{k:05}")
        doc["title"] = "odd" if k % 2 else "even"
        items.append((doc, keys))
    store.bulk_load("User", items)
    return [doc["id"] for doc, _ in items]


def get(service: ScimService, path: str, **query: str) -> tuple[int, dict[str, Any]]:
    resp = service.handle(ScimRequest("GET", path, BASE, query=query))
    return resp.status, json.loads(resp.body) if resp.body else {}


def walk(service: ScimService, count: int, **query: str) -> list[str]:
    ids: list[str] = []
    status, body = get(service, "/Users", cursor="", count=str(count), **query)
    while True:
        assert status == 200, body
        ids += [r["id"] for r in body["Resources"]]
        if "nextCursor" not in body:
            assert body["totalResults"] == len(ids)
            return ids
        assert "startIndex" not in body
        status, body = get(service, "/Users", cursor=body["nextCursor"], count=str(count), **query)


def test_index_pages_partition_the_users(store: Store) -> None:
    """startIndex/count pages are disjoint and together hold every user once; totalResults is
    always past the page and exact on the last page."""
    ids = seed(store, 23)
    service = ScimService(store)
    seen: list[str] = []
    start = 1
    while True:
        status, body = get(service, "/Users", startIndex=str(start), count="5")
        assert status == 200 and body["startIndex"] == start
        seen += [r["id"] for r in body["Resources"]]
        assert body["totalResults"] >= start - 1 + body["itemsPerPage"]
        if start + 5 > body["totalResults"]:
            break
        start += 5
    assert sorted(seen) == sorted(ids) and body["totalResults"] == 23


def test_deep_start_index_past_the_end(store: Store) -> None:
    """A startIndex past the last user: no resources, the exact total."""
    seed(store, 7)
    status, body = get(ScimService(store), "/Users", startIndex="50", count="5")
    assert status == 200 and body["Resources"] == [] and body["totalResults"] == 7


@pytest.mark.parametrize("count", [1, 4, 100], ids=["one", "four", "all"])
def test_cursor_walk_returns_every_user_once(store: Store, count: int) -> None:
    """RFC 9865: following nextCursor from an empty cursor returns every resource once."""
    ids = seed(store, 13)
    assert sorted(walk(ScimService(store), count)) == sorted(ids)


def test_cursor_walk_with_scan_filter_and_small_bound(store: Store) -> None:
    """A filter no index serves, walked with a bound of 4 rows a request: pages end early (some
    empty) with a nextCursor, and the walk still returns exactly the matches."""
    ids = seed(store, 20)
    odd = {ids[k] for k in range(20) if k % 2}
    service = ScimService(store, max_scan_rows=4)
    got = walk(service, 3, filter='title eq "odd"')
    assert sorted(got) == sorted(odd)


def test_cursor_walk_under_concurrent_creates_and_deletes(store: Store) -> None:
    """Resources that exist throughout the walk come back exactly once, whatever is created and
    deleted between pages; nothing comes back twice; a resource deleted before the walk reached
    it never comes back."""
    rng = random.Random(12)
    ids = seed(store, 40)
    service = ScimService(store)
    stable = set(ids)
    deleted: set[str] = set()
    created: set[str] = set()
    returned: list[str] = []
    status, body = get(service, "/Users", cursor="", count="6")
    while True:
        assert status == 200
        returned += [r["id"] for r in body["Resources"]]
        ahead = sorted(stable - set(returned))
        for victim in rng.sample(ahead, k=min(2, len(ahead))):
            store.delete("User", victim)
            stable.discard(victim)
            deleted.add(victim)
        for n in range(3):
            doc, keys = user(f"new-{len(created)}-{n}")
            created.add(store.create("User", doc, keys).id)
        if "nextCursor" not in body:
            break
        status, body = get(service, "/Users", cursor=body["nextCursor"], count="6")
    assert len(returned) == len(set(returned))
    assert stable <= set(returned)
    assert not deleted & set(returned)
    assert set(returned) <= set(ids) | created


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),
        lambda c: "x" + c,
        lambda c: "not-a-cursor",
        lambda c: c.split(".")[0],
    ],
    ids=["mac", "prefix", "garbage", "unsigned"],
)
def test_tampered_cursor_is_invalid_cursor(store: Store, mangle: Any) -> None:
    """RFC 9865: a cursor the service did not issue is 400 invalidCursor."""
    seed(store, 5)
    service = ScimService(store)
    _, body = get(service, "/Users", cursor="", count="2")
    status, err = get(service, "/Users", cursor=mangle(body["nextCursor"]), count="2")
    assert status == 400 and err["scimType"] == "invalidCursor"


def test_cursor_of_another_query_is_invalid_cursor(store: Store) -> None:
    """A cursor replayed with another filter would continue in another order: refused."""
    seed(store, 5)
    service = ScimService(store)
    _, body = get(service, "/Users", cursor="", count="2")
    status, err = get(service, "/Users", cursor=body["nextCursor"], filter='title eq "odd"')
    assert status == 400 and err["scimType"] == "invalidCursor"


def test_expired_cursor_is_expired_cursor(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9865: a cursor past cursorTimeout is 400 expiredCursor."""
    from scim_core import cursor

    seed(store, 5)
    service = ScimService(store)
    _, body = get(service, "/Users", cursor="", count="2")
    later = cursor.time.time() + cursor.CURSOR_TIMEOUT + 5
    monkeypatch.setattr(cursor.time, "time", lambda: later)
    service = ScimService(store)  # a process started later: same key from the state table
    status, err = get(service, "/Users", cursor=body["nextCursor"], count="2")
    assert status == 400 and err["scimType"] == "expiredCursor"


def test_cursor_works_across_processes(store: Store) -> None:
    """The key lives in the store, so another process of the instance accepts the cursor."""
    ids = seed(store, 5)
    _, body = get(ScimService(store), "/Users", cursor="", count="2")
    status, page = get(ScimService(store), "/Users", cursor=body["nextCursor"], count="10")
    assert status == 200 and len(body["Resources"]) + len(page["Resources"]) == len(ids)


def test_cursor_with_start_index_is_refused(store: Store) -> None:
    """A request pages by index or by cursor (RFC 9865)."""
    status, err = get(ScimService(store), "/Users", cursor="", startIndex="3")
    assert status == 400 and err["scimType"] == "invalidValue"


def test_scan_past_the_bound_is_too_many(store: Store) -> None:
    """RFC 7644 §3.4.2.2: a filter that would examine more rows than the bound, and cannot
    return a partial page (index pagination), is 400 tooMany instead of reading everything."""
    seed(store, 30)
    service = ScimService(store, max_scan_rows=10)
    status, err = get(service, "/Users", filter='title eq "nobody"')
    assert status == 400 and err["scimType"] == "tooMany"
    status, err = get(service, "/Users", sortBy="userName")
    assert status == 400 and err["scimType"] == "tooMany"


def test_full_page_at_the_bound_is_answered(store: Store) -> None:
    """A page filled before the bound is answered, its total a lower bound past the page."""
    seed(store, 30)
    service = ScimService(store, max_scan_rows=3)  # the page fills exactly at the bound
    status, body = get(service, "/Users", filter='userName sw "user"', count="3")
    assert status == 200 and len(body["Resources"]) == 3 and body["totalResults"] == 4


def test_sorted_cursor_walk(store: Store) -> None:
    """sortBy with a cursor: the walk comes back in order, every user once."""
    seed(store, 9)
    service = ScimService(store)
    names: list[str] = []
    status, body = get(service, "/Users", cursor="", count="4", sortBy="userName")
    while True:
        names += [r["userName"] for r in body["Resources"]]
        if "nextCursor" not in body:
            break
        status, body = get(
            service, "/Users", cursor=body["nextCursor"], count="4", sortBy="userName"
        )
    assert names == sorted(names) and len(names) == 9


def test_service_provider_config_announces_cursors(store: Store) -> None:
    """RFC 9865 (Service Provider Configuration): cursor and index supported."""
    _, spc = get(ScimService(store), "/ServiceProviderConfig")
    assert spc["pagination"]["cursor"] is True and spc["pagination"]["index"] is True
    assert spc["pagination"]["cursorTimeout"] > 0


def test_table_page_costs_do_not_grow_with_the_partition(table_store: TableStore) -> None:
    """O(page) on Table Storage: a cursor page mid-walk, and a first index page, each cost the
    same storage requests at 300 users as at 30; a deep startIndex costs one key-only request
    per 1,000 rows skipped plus the page."""
    service = ScimService(table_store)
    seed(table_store, 30)
    costs = []
    for extra in (0, 1200):
        if extra:
            seed(table_store, extra, prefix="more")
        _, first = get(service, "/Users", cursor="", count="10")
        before = table_store.request_count
        status, page = get(service, "/Users", cursor=first["nextCursor"], count="10")
        assert status == 200 and len(page["Resources"]) == 10
        cursor_cost = table_store.request_count - before
        before = table_store.request_count
        get(service, "/Users", count="10")
        costs.append((cursor_cost, table_store.request_count - before))
    assert costs[0] == costs[1] == (1, 1)
    before = table_store.request_count
    status, deep = get(service, "/Users", startIndex="1201", count="10")
    assert status == 200 and len(deep["Resources"]) == 10
    assert table_store.request_count - before == 3  # 1,200 keys = 2 responses, then the page


def test_export_walk_of_whole_storage_pages(store: Store) -> None:
    """A cursor export 1,000 a page over 2,100 users (past two storage responses): every user
    once; each page of 1,000 is one storage request on Table Storage (no probe for a 1,001st
    row), and the last page ends the walk."""
    ids = seed(store, 2100)
    service = ScimService(store)
    before = getattr(store, "request_count", 0)
    assert sorted(walk(service, 1000)) == sorted(ids)
    if isinstance(store, TableStore):
        # 3 pages, and the cursor key's first use: a state read and its creation.
        assert store.request_count - before == 5
