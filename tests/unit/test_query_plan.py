"""Every query Entra sends is answered by point reads, never a scan (DESIGN.md "Storage
design"); ``excludedAttributes=members`` never reads member rows."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from scim_core.http import ScimRequest
from scim_core.service import ScimService
from scim_core.store.memory import MemoryStore


class CountingStore(MemoryStore):
    """A MemoryStore that counts calls per method."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in ("calls",):
            object.__getattribute__(self, "calls")[name] += 1
        return object.__getattribute__(self, name)


def call(
    service: ScimService, method: str, path: str, body: Any = None, **query: str
) -> tuple[int, Any]:
    req = ScimRequest(
        method=method,
        path=path,
        base_url="https://scim.test/scim/v2",
        query=query,
        headers={"content-type": "application/scim+json"},
        body=json.dumps(body).encode() if body is not None else b"",
    )
    resp = service.handle(req)
    return resp.status, json.loads(resp.body) if resp.body else None


@pytest.fixture
def setup() -> tuple[ScimService, CountingStore, dict[str, str]]:
    store = CountingStore()
    service = ScimService(store)
    ids: dict[str, str] = {}
    for i in range(3):
        _, user = call(
            service, "POST", "/Users", {"userName": f"User{i}@x.com", "externalId": f"ext{i}"}
        )
        ids[f"u{i}"] = user["id"]
    _, group = call(
        service, "POST", "/Groups", {"displayName": "Sales", "members": [{"value": ids["u0"]}]}
    )
    ids["g"] = group["id"]
    others = [
        call(service, "POST", "/Users", {"userName": f"many{i}@x.com"})[1]["id"] for i in range(120)
    ]
    many = [{"value": ids["u0"]}] + [{"value": other} for other in others]
    _, big = call(service, "POST", "/Groups", {"displayName": "Big", "members": many})
    ids["big"] = big["id"]
    store.calls.clear()
    return service, store, ids


@pytest.mark.parametrize(
    ("path", "flt", "extra", "expected"),
    [
        ("/Users", 'userName eq "user1@X.COM"', {}, {"lookup": 1, "get": 1}),
        ("/Users", 'externalId eq "ext1"', {}, {"lookup": 1, "get": 1}),
        ("/Users", 'id eq "{u1}"', {}, {"get": 1}),
        ("/Users", 'id eq "{u1}" and manager eq "{u0}"', {"attributes": "id"}, {"get": 1}),
        (
            "/Groups",
            'displayName eq "sales"',
            {"excludedAttributes": "members"},
            {"lookup": 1, "get": 1},
        ),
        # A small group's members come with its document (Stored.members).
        ("/Groups", 'id eq "{g}" and members eq "{u0}"', {"attributes": "id"}, {"get": 1}),
        (
            "/Groups",
            'id eq "{g}" and members[value eq "{u0}"]',
            {"excludedAttributes": "members"},
            {"get": 1},
        ),
        (
            "/Groups",
            'id eq "{big}" and members eq "{u0}"',
            {"excludedAttributes": "members"},
            {"get": 1, "has_member": 1},
        ),
    ],
    ids=[
        "userName",
        "externalId",
        "id",
        "id-and-manager",
        "displayName",
        "members-eq",
        "members-valuepath",
        "members-eq-large-group",
    ],
)
def test_entra_queries_are_point_reads(
    setup: Any, path: str, flt: str, extra: dict[str, str], expected: dict[str, int]
) -> None:
    service, store, ids = setup
    status, body = call(service, "GET", path, filter=flt.format(**ids), **extra)
    assert status == 200, body
    used = {
        k: v
        for k, v in store.calls.items()
        if k in ("lookup", "get", "scan", "list_members", "has_member", "groups_of")
    }
    assert used == expected


def test_group_get_without_members_reads_no_member_rows(setup: Any) -> None:
    service, store, ids = setup
    status, body = call(service, "GET", f"/Groups/{ids['g']}", excludedAttributes="members")
    assert status == 200 and "members" not in body
    assert store.calls["list_members"] == 0 and store.calls["get"] == 1
