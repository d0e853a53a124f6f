"""The change poll (``meta.lastModified gt|ge``) on both stores: a time-ordered index written in
each resource's own transaction, tombstones for deletes (kept TOMBSTONE_DAYS), and a poll that
reads only what changed (README "Change poll")."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_core.http import ScimRequest
from scim_core.indexes import mark_built
from scim_core.searches import DELETED
from scim_core.service import ScimService
from scim_core.store import Store, stamp
from scim_core.store.table import TableStore
from tests.store.test_contract import user

BASE = "https://scim.test/scim/v2"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def call(service: ScimService, method: str, path: str, body: Any = None, **query: str) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/scim+json"}
    resp = service.handle(ScimRequest(method, path, BASE, query, headers, data))
    return resp.status, json.loads(resp.body) if resp.body else {}


def test_changes_are_time_ordered_with_tombstones(store: Store) -> None:
    """Store contract: changes since a stamp, oldest first, resumable after a position; a
    delete leaves a tombstone in its place; purge removes tombstones older than a stamp."""
    stamps = [f"2026-01-0{n}T00:00:00.000000Z" for n in range(1, 6)]
    ids = []
    for when in stamps:
        doc, keys = user(f"u-{when}")
        ids.append(store.create("User", doc, {**keys, "lm": when}).id)
    got = list(store.changes("User", stamps[2]))
    assert [c.id for c in got] == ids[2:] and not any(c.deleted for c in got)
    assert [c.id for c in store.changes("User", stamps[0], got[0].position)] == ids[3:]
    store.delete("User", ids[3])
    after = list(store.changes("User", stamps[2]))
    assert [(c.id, c.deleted) for c in after] == [(ids[2], False), (ids[4], False), (ids[3], True)]
    assert after[-1].stamp > stamps[-1]  # the tombstone is stamped with the delete time
    assert store.purge_tombstones("User", stamps[0]) == 0
    assert store.purge_tombstones("User", stamp(datetime.now(UTC) + timedelta(seconds=5))) == 1
    assert [c.id for c in store.changes("User", stamps[0])] == [ids[0], ids[1], ids[2], ids[4]]


def test_poll_returns_changes_and_deletes_since(store: Store) -> None:
    """GET /Users?filter=meta.lastModified gt "T": the users created or modified after T, and
    under the Deleted extension those deleted after T; nothing older."""
    service = ScimService(store)
    old = [call(service, "POST", "/Users", {"userName": f"old{n}"})[1]["id"] for n in range(5)]
    time.sleep(0.01)
    since = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    assert call(service, "PATCH", f"/Users/{old[1]}", patch)[0] == 200
    new = call(service, "POST", "/Users", {"userName": "new"})[1]["id"]
    assert call(service, "DELETE", f"/Users/{old[2]}")[0] == 204
    status, body = call(service, "GET", "/Users", filter=f'meta.lastModified gt "{since}"')
    assert status == 200, body
    # Time order; two writes in one millisecond come in position order.
    assert sorted(r["id"] for r in body["Resources"]) == sorted([old[1], new])
    assert [d["id"] for d in body[DELETED]] == [old[2]] and DELETED in body["schemas"]
    assert body["totalResults"] == 3
    status, body = call(
        service, "GET", "/Users", filter=f'meta.lastModified ge "{since}" and userName eq "new"'
    )
    assert [r["id"] for r in body["Resources"]] == [new]  # the eq index wins; no tombstones
    assert DELETED not in body


def test_cursor_poll_mirrors_every_change(store: Store) -> None:
    """A mirror pages a poll by cursor: every change once, deletes included, in time order."""
    service = ScimService(store)
    since = (datetime.now(UTC) - timedelta(milliseconds=2)).isoformat()  # lastModified is in ms
    made = [call(service, "POST", "/Users", {"userName": f"m{n}"})[1]["id"] for n in range(7)]
    call(service, "DELETE", f"/Users/{made[0]}")
    seen: list[str] = []
    gone: list[str] = []
    query = {"filter": f'meta.lastModified gt "{since}"', "count": "3", "cursor": ""}
    while True:
        status, body = call(service, "GET", "/Users", **query)
        assert status == 200 and len(body["Resources"]) + len(body[DELETED]) <= 3
        seen += [r["id"] for r in body["Resources"]]
        gone += [d["id"] for d in body[DELETED]]
        if "nextCursor" not in body:
            break
        query["cursor"] = body["nextCursor"]
    assert len(seen) == len(set(seen)) and set(seen) == set(made[1:]) and gone == [made[0]]


def test_group_changes_are_polled_too(store: Store) -> None:
    service = ScimService(store)
    since = (datetime.now(UTC) - timedelta(milliseconds=2)).isoformat()  # lastModified is in ms
    gid = call(service, "POST", "/Groups", {"displayName": "g"})[1]["id"]
    status, body = call(service, "GET", "/Groups", filter=f'meta.lastModified gt "{since}"')
    assert status == 200 and [r["id"] for r in body["Resources"]] == [gid]


def test_table_poll_reads_only_the_changes(table_store: TableStore) -> None:
    """On Table Storage a poll returning 10 changes costs the same at 300 users as at 30: two
    key-only range reads (changes, tombstones) and one point read per change."""
    mark_built(table_store, ["lm"])  # every user below is written with its change key
    service = ScimService(table_store)
    costs = []
    for batch in (30, 270):
        table_store.bulk_load(
            "User",
            [
                (doc, {**keys, "lm": "2020-01-01T00:00:00.000000Z"})
                for doc, keys in (user(f"bulk-{batch}-{n}") for n in range(batch))
            ],
        )
        since = (datetime.now(UTC) - timedelta(milliseconds=2)).isoformat()
        for n in range(10):
            call(service, "POST", "/Users", {"userName": f"p-{batch}-{n}"})
        flt = f'meta.lastModified gt "{since}"'
        call(service, "GET", "/Users", filter=flt)  # readiness and purge, once a process
        before = table_store.request_count
        status, body = call(service, "GET", "/Users", filter=flt)
        assert status == 200 and len(body["Resources"]) == 10
        costs.append(table_store.request_count - before)
    assert costs == [12, 12]


def test_a_poll_asks_storage_for_one_page_of_changes_not_a_thousand(
    table_store: TableStore, monkeypatch: Any
) -> None:
    """A poll of ``count`` n reads the change index and the tombstones n + 1 rows a request
    (enough to know whether more follow), not a full 1,000-row page of index keys."""
    import scim_core.store.table as table_module

    mark_built(table_store, ["lm"])
    service = ScimService(table_store)
    since = (datetime.now(UTC) - timedelta(milliseconds=2)).isoformat()
    for n in range(25):
        call(service, "POST", "/Users", {"userName": f"size-{n}"})
    flt = f'meta.lastModified gt "{since}"'
    call(service, "GET", "/Users", filter=flt)  # readiness and purge, once a process
    sizes: list[int | None] = []
    real = table_module.range_rows

    def spy(*args: Any, **kwargs: Any) -> Any:
        sizes.append(kwargs.get("page_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(table_module, "range_rows", spy)
    status, body = call(service, "GET", "/Users", filter=flt, count="10")
    assert status == 200 and len(body["Resources"]) == 10
    assert sizes == [11, 11]
