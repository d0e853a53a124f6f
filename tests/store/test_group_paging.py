"""A large group's members through the service, on both stores: read a storage page at a time,
bounded per response, and paged by cursor (README "Paging", groups)."""

from __future__ import annotations

import json
import re

import pytest

from scim_core import service as service_module
from scim_core.http import ScimRequest
from scim_core.service import ScimService
from scim_core.store import Member, Store
from tests.store.test_contract import make_group, user
from tests.store.test_listing import get

SIZE = 2100  # past two Table Storage responses of members


@pytest.fixture
def big_group(store: Store) -> tuple[str, set[str]]:
    """A group of SIZE existing users (a member that does not exist is dropped)."""
    items = [user(f"member-{n:05}") for n in range(SIZE)]
    store.bulk_load("User", items)
    ids = {doc["id"] for doc, _ in items}
    return make_group(store, "big", [Member(m) for m in ids]), ids


def test_get_group_reads_members_across_storage_pages(
    store: Store, big_group: tuple[str, set[str]]
) -> None:
    """Below the bound, a GET returns every member, read 999 at a time."""
    gid, ids = big_group
    status, body = get(ScimService(store), f"/Groups/{gid}")
    assert status == 200 and {m["value"] for m in body["members"]} == ids


def test_get_group_past_the_member_bound_is_too_many(
    store: Store, big_group: tuple[str, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_MEMBERS_RETURNED a GET with members is tooMany (RFC 7644 §3.4.2.2) rather than
    a response of unbounded size; without members it is answered."""
    gid, _ = big_group
    monkeypatch.setattr(service_module, "MAX_MEMBERS_RETURNED", 1500)
    service = ScimService(store)
    status, err = get(service, f"/Groups/{gid}")
    assert status == 400 and err["scimType"] == "tooMany" and "cursor" in err["detail"]
    status, body = get(service, f"/Groups/{gid}", excludedAttributes="members")
    assert status == 200 and "members" not in body


@pytest.mark.parametrize("count", [250, 999], ids=["250", "999"])
def test_member_cursor_walk(store: Store, big_group: tuple[str, set[str]], count: int) -> None:
    """attributes=members&cursor= pages the members; Link rel=next until the last page; every
    member exactly once."""
    gid, ids = big_group
    service = ScimService(store)
    seen: list[str] = []
    query = {"attributes": "members", "cursor": "", "count": str(count)}
    while True:
        resp = service.handle(ScimRequest("GET", f"/Groups/{gid}", "https://h/scim", query=query))
        assert resp.status == 200
        body = json.loads(resp.body)
        assert len(body["members"]) <= count
        seen += [m["value"] for m in body["members"]]
        link = resp.headers.get("Link")
        if link is None:
            break
        query = dict(re.findall(r"[?&](\w+)=([^&>]*)", link))
    assert len(seen) == len(set(seen)) == SIZE and set(seen) == ids


def test_member_cursor_of_another_group_is_invalid(
    store: Store, big_group: tuple[str, set[str]]
) -> None:
    """A member cursor names its group: replayed on another group it is invalidCursor."""
    gid, _ = big_group
    other = make_group(store, "other")
    service = ScimService(store)
    resp = service.handle(
        ScimRequest("GET", f"/Groups/{gid}", "https://h/scim", query={"cursor": "", "count": "5"})
    )
    cursor = re.search(r"cursor=([^&>]*)", resp.headers["Link"])
    assert cursor is not None
    status, err = get(service, f"/Groups/{other}", cursor=cursor.group(1))
    assert status == 400 and err["scimType"] == "invalidCursor"
