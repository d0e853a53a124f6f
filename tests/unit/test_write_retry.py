"""A PUT or PATCH without ``If-Match`` that loses the store's ETag race to a concurrent write of
the same resource is read again and re-applied: the client set no precondition, so a 412 would
be wrong (RFC 9110 §13.1.1) and Entra counts it as a failed request. With ``If-Match`` the 412
stands (RFC 7644 §3.14)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from scim_core.http import ScimRequest
from scim_core.resource import version_of
from scim_core.service import WRITE_ATTEMPTS, ScimService
from scim_core.store import MemberChange, Outbox, Stored
from scim_core.store.memory import MemoryStore

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


NO_CHANGE = MemberChange()


class RacingStore(MemoryStore):
    """Before each of its first ``races`` replaces, another writer bumps the resource."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def replace(
        self,
        rtype: str,
        doc: dict[str, Any],
        keys: Any,
        etag: str,
        members: MemberChange = NO_CHANGE,
        outbox: Sequence[Outbox] = (),
    ) -> Stored:
        if self.races:
            self.races -= 1
            current = self.get(rtype, str(doc["id"]))
            super().replace(rtype, current.doc, current.keys, current.etag)
        return super().replace(rtype, doc, keys, etag, members, outbox)


def call(
    service: ScimService, method: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = ScimRequest(
        method=method,
        path=path,
        base_url="https://scim.test/scim/v2",
        headers={"content-type": "application/scim+json", **(headers or {})},
        body=json.dumps(body).encode(),
    )
    resp = service.handle(req)
    return resp.status, json.loads(resp.body) if resp.body else None


def make_group(races: int) -> tuple[ScimService, RacingStore, str]:
    store = RacingStore(0)
    service = ScimService(store)
    status, group = call(service, "POST", "/Groups", {"schemas": [GROUP], "displayName": "G"})
    assert status == 201
    store.races = races
    return service, store, group["id"]


def add_member(member: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": member}]}],
    }


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_lost_race_without_if_match_is_retried(method: str) -> None:
    service, store, gid = make_group(races=0)
    _, user = call(service, "POST", "/Users", {"userName": "u1"})
    store.races = 3
    body = (
        add_member(user["id"])
        if method == "PATCH"
        else {"schemas": [GROUP], "displayName": "G", "members": [{"value": user["id"]}]}
    )
    status, out = call(service, method, f"/Groups/{gid}", body)
    assert status == 200, out
    assert [m.value for m in store.list_members(gid)] == [user["id"]]


def test_lost_race_with_if_match_is_412() -> None:
    service, store, gid = make_group(races=1)
    version = version_of(store.get("Group", gid).etag)
    status, out = call(service, "PATCH", f"/Groups/{gid}", add_member("u1"), {"if-match": version})
    assert status == 412 and out["status"] == "412"
    assert store.list_members(gid) == []


def test_retries_are_bounded() -> None:
    service, store, gid = make_group(races=WRITE_ATTEMPTS)
    status, _ = call(service, "PATCH", f"/Groups/{gid}", add_member("u1"))
    assert status == 412
