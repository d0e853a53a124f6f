"""Storage requests per operation through the HTTP host, counted at the Table client's
transport (TableStore.request_count): every Entra query is a point read, creates are one
transaction, and member changes cost the same whatever the group's size (DESIGN.md "Storage
design"). Also: concurrent creates of one userName give exactly one 201."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

import function_app
from scim_core.store import INLINE_MEMBERS
from scim_core.store.table import TableStore
from tests.e2e.test_entra_conversation import GROUP, PATCH, entra_user
from tests.scimclient import Client, unique
from tests.store.test_contract import real


@pytest.fixture
def store(scim: Client) -> TableStore:
    scim.get("/ServiceProviderConfig")  # the app builds its store on first use
    built = function_app.store()
    assert isinstance(built, TableStore)
    # Locally the first write creates the tables (tests/store/test_tables_on_demand.py); make
    # sure that has happened, so that no count here includes it whatever ran before.
    built.create_tables()
    # A process reads which operator indexes are built before its first user create (once;
    # scim_core.indexes): make sure that has happened too.
    scim.post("/Users", entra_user(unique("warm") + "@x.com", unique("ext")))
    return built


def real_users(store: TableStore, count: int) -> list[str]:
    """Users that exist (a group keeps only members that do), loaded in bulk."""
    return real(store, *(str(uuid.uuid4()) for _ in range(count)))


def cost(store: TableStore, action: Any) -> tuple[int, Any]:
    before = store.request_count
    result = action()
    return store.request_count - before, result


def test_user_operations_are_point_reads(scim: Client, store: TableStore) -> None:
    name, ext = unique("cost") + "@x.com", unique("ext")
    n, resp = cost(store, lambda: scim.post("/Users", entra_user(name, ext)))
    # One EGT of the document and its index rows, and one of its liveness rows (a member add
    # checks them: scim_core/store/membership.py).
    assert resp.status_code == 201 and n == 2, "create = two entity-group transactions"
    uid = resp.json()["id"]
    n, resp = cost(store, lambda: scim.get(f"/Users/{uid}"))
    assert resp.status_code == 200 and n == 1
    n, resp = cost(store, lambda: scim.get("/Users", params={"filter": f'userName eq "{name}"'}))
    assert resp.json()["totalResults"] == 1 and n <= 2
    n, resp = cost(store, lambda: scim.get("/Users", params={"filter": f'externalId eq "{ext}"'}))
    assert resp.json()["totalResults"] == 1 and n <= 2
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    n, resp = cost(store, lambda: scim.patch(f"/Users/{uid}", body))
    assert resp.status_code == 200 and n <= 2


@pytest.mark.parametrize("size", [10, 300])
def test_adding_a_member_costs_the_same_at_any_group_size(
    scim: Client, store: TableStore, size: int
) -> None:
    """The group's size never enters the cost: get + one transaction (bench target:
    ceil((k+1)/33) + 1). A small group's 200 response carries its members, handed back by the store
    with the write; a large one's leaves them out rather than read them."""
    gid = scim.post("/Groups", {"schemas": [GROUP], "displayName": unique("big")}).json()["id"]
    members = [{"value": u} for u in real_users(store, size)]
    for start in range(0, size, 100):
        add = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": members[start : start + 100]}],
        }
        assert scim.patch(f"/Groups/{gid}", add).status_code == 200
    uid = scim.post("/Users", entra_user(unique("m") + "@x.com", unique("e"))).json()["id"]
    add = {
        "schemas": [PATCH],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}],
    }
    n, resp = cost(store, lambda: scim.patch(f"/Groups/{gid}", add))
    assert resp.status_code == 200 and n == 2
    if size < INLINE_MEMBERS:
        assert {m["value"] for m in resp.json()["members"]} == {
            *(m["value"] for m in members),
            uid,
        }
    else:
        assert "members" not in resp.json()
    check = f'id eq "{gid}" and members eq "{uid}"'
    n, resp = cost(store, lambda: scim.get("/Groups", params={"filter": check, "attributes": "id"}))
    # A small group's members come with its document; a large one's takes a point read.
    assert resp.json()["totalResults"] == 1 and n == (1 if size < INLINE_MEMBERS else 2)
    n, resp = cost(
        store, lambda: scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"})
    )
    assert resp.status_code == 200 and "members" not in resp.json() and n == 1
    n, resp = cost(store, lambda: scim.get(f"/Groups/{gid}"))
    assert len(resp.json()["members"]) == size + 1
    assert n == (1 if size < INLINE_MEMBERS else 2)  # a small group's members come inline


@pytest.mark.parametrize("k", [1, 32, 33, 34, 98, 120])
def test_adding_k_members_costs_ceil_k_plus_1_over_33_plus_one(
    scim: Client, store: TableStore, k: int
) -> None:
    gid = scim.post("/Groups", {"schemas": [GROUP], "displayName": unique("k")}).json()["id"]
    members = [{"value": u} for u in real_users(store, k)]
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": members}]}
    n, resp = cost(store, lambda: scim.patch(f"/Groups/{gid}", add))
    # Three operations a member (two membership rows, the check of its liveness row): 33 in an
    # EGT of 100 with the group's own row; the first EGT also moves the group's change-index
    # row (delete + create), so it holds 32: ceil((k + 1) / 33).
    assert resp.status_code == 200 and n == -(-(k + 1) // 33) + 1
    got = scim.get(f"/Groups/{gid}").json()
    assert {m["value"] for m in got["members"]} == {m["value"] for m in members}


def test_concurrent_creates_of_one_user_name(scim: Client) -> None:
    """Twenty concurrent creates of one userName (in different cases): exactly one 201, the
    rest 409 uniqueness; afterwards exactly one user has the name."""
    name = unique("race") + "@contoso.com"

    def create(i: int) -> int:
        body = entra_user(name.upper() if i % 2 else name, unique("e"))
        resp = requests.post(
            f"{scim.base}/Users",
            json=body,
            timeout=60,
            headers={
                "Authorization": f"Bearer {scim.token}",
                "Content-Type": "application/scim+json",
            },
        )
        return resp.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(create, range(20)))
    assert statuses == [201] + [409] * 19
    found = scim.get("/Users", params={"filter": f'userName eq "{name}"'}).json()
    assert found["totalResults"] == 1
