"""RFC 7644 behaviour through the local host: discovery, ETags, projection, sorting, search,
bulk, PUT."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_entra_conversation import ENT, GROUP, USER, entra_user
from tests.scimclient import Client, unique


def test_discovery_lists(scim: Client) -> None:
    """RFC 7644 §4: /ServiceProviderConfig, /Schemas and /ResourceTypes exist."""
    spc = scim.get("/ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["bulk"]["supported"] and spc["etag"]["supported"]
    schemas = scim.get("/Schemas").json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER, ENT, GROUP} <= ids and schemas["totalResults"] == len(ids)
    one = scim.get(f"/Schemas/{USER}")
    assert one.status_code == 200 and one.json()["id"] == USER
    rts = scim.get("/ResourceTypes").json()
    assert {r["name"] for r in rts["Resources"]} == {"User", "Group"}
    assert scim.get("/ResourceTypes/User").json()["endpoint"] == "/Users"
    assert scim.get("/ResourceTypes/Nope").status_code == 404
    assert scim.get("/Schemas/urn:nope").status_code == 404


def test_me_is_501(scim: Client) -> None:
    """/Me is not implemented: a SCIM error with 501."""
    resp = scim.get("/Me")
    assert resp.status_code == 501 and resp.json()["status"] == "501"


def test_etag_if_match_and_if_none_match(scim: Client) -> None:
    """RFC 7644 §3.14: ETag header = meta.version; If-None-Match -> 304; stale If-Match -> 412."""
    created = scim.post("/Users", entra_user(unique("etag") + "@x.com", unique("e")))
    uid, version = created.json()["id"], created.headers["ETag"]
    assert scim.get(f"/Users/{uid}", headers={"If-None-Match": version}).status_code == 304
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "A"}],
    }
    first = scim.patch(f"/Users/{uid}", body, headers={"If-Match": version})
    assert first.status_code == 200 and first.headers["ETag"] != version
    stale = scim.patch(f"/Users/{uid}", body, headers={"If-Match": version})
    assert stale.status_code == 412
    assert scim.delete(f"/Users/{uid}", headers={"If-Match": version}).status_code == 412
    assert (
        scim.delete(f"/Users/{uid}", headers={"If-Match": first.headers["ETag"]}).status_code == 204
    )


def test_attributes_and_excluded_attributes(scim: Client) -> None:
    """RFC 7644 §3.4.2.5: `attributes` narrows to the named ones (id always returned);
    `excludedAttributes` removes them."""
    uid = scim.post("/Users", entra_user(unique("proj") + "@x.com", unique("e"))).json()["id"]
    only = scim.get(f"/Users/{uid}", params={"attributes": "userName,name.givenName"}).json()
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"givenName": "Jeff"}
    less = scim.get(f"/Users/{uid}", params={"excludedAttributes": f"emails,{ENT}:department"})
    assert "emails" not in less.json() and "department" not in less.json()[ENT]
    groups = scim.get(f"/Users/{uid}", params={"attributes": "groups"}).json()
    assert groups["groups"] == []


def test_put_replaces(scim: Client) -> None:
    """RFC 7644 §3.5.1: PUT replaces the resource; omitted attributes are cleared."""
    uid = scim.post("/Users", entra_user(unique("put") + "@x.com", unique("e"))).json()["id"]
    name = unique("put2") + "@x.com"
    resp = scim.put(f"/Users/{uid}", {"schemas": [USER], "userName": name, "active": False})
    assert resp.status_code == 200, resp.text
    got = scim.get(f"/Users/{uid}").json()
    assert got["userName"] == name and got["active"] is False and "title" not in got
    assert got["id"] == uid


def test_search_post(scim: Client) -> None:
    """RFC 7644 §3.4.3: POST /Users/.search and root /.search."""
    name = unique("srch") + "@x.com"
    scim.post("/Users", entra_user(name, unique("e")))
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName eq "{name}"',
        "attributes": ["userName"],
    }
    resp = scim.post("/Users/.search", body)
    assert resp.status_code == 200 and resp.json()["totalResults"] == 1
    root = scim.post("/.search", body)
    assert root.status_code == 200 and root.json()["totalResults"] == 1


def test_sorting(scim: Client) -> None:
    """RFC 7644 §3.4.2.3: sortBy/sortOrder."""
    tag = unique("sort")
    for n in ("b", "c", "a"):
        scim.post("/Users", {**entra_user(f"{n}-{tag}@x.com", unique("e")), "title": tag})
    asc = scim.get("/Users", params={"filter": f'title eq "{tag}"', "sortBy": "userName"}).json()
    assert [r["userName"][0] for r in asc["Resources"]] == ["a", "b", "c"]
    desc = scim.get(
        "/Users",
        params={"filter": f'title eq "{tag}"', "sortBy": "userName", "sortOrder": "descending"},
    ).json()
    assert [r["userName"][0] for r in desc["Resources"]] == ["c", "b", "a"]


def test_bulk_with_bulk_id_references(scim: Client) -> None:
    """RFC 7644 §3.7: a group references a user created in the same request by bulkId,
    even when the group comes first."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {
                    "schemas": [GROUP],
                    "displayName": unique("bulk"),
                    "members": [{"type": "User", "value": "bulkId:u1"}],
                },
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER], "userName": unique("bulk") + "@x.com"},
            },
        ],
    }
    resp = scim.post("/Bulk", body)
    assert resp.status_code == 200, resp.text
    ops = resp.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201"]
    gid = ops[0]["location"].rsplit("/", 1)[1]
    uid = ops[1]["location"].rsplit("/", 1)[1]
    members = scim.get(f"/Groups/{gid}").json()["members"]
    assert [m["value"] for m in members] == [uid]


def test_bulk_fail_on_errors(scim: Client) -> None:
    """RFC 7644 §3.7.3: processing stops after failOnErrors errors."""
    name = unique("dup") + "@x.com"
    ops = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": f"b{i}",
            "data": {"schemas": [USER], "userName": name},
        }
        for i in range(4)
    ]
    resp = scim.post(
        "/Bulk",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "failOnErrors": 1,
            "Operations": ops,
        },
    )
    statuses = [o["status"] for o in resp.json()["Operations"]]
    assert statuses == ["201", "409"]


@pytest.mark.parametrize("count", ["0", "1"])
def test_count_boundaries(scim: Client, count: str) -> None:
    """RFC 7644 §3.4.2.4: count=0 returns no resources but the total."""
    body = scim.get("/Users", params={"count": count}).json()
    assert body["itemsPerPage"] == int(count) == len(body["Resources"])


def test_missing_resource_in_bulk_reference(scim: Client) -> None:
    """An unknown bulkId reference is an operation error, not a failed request."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "PATCH",
                "path": "/Users/bulkId:nope",
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "title", "value": str(uuid.uuid4())}],
                },
            }
        ],
    }
    resp = scim.post("/Bulk", body)
    assert resp.status_code == 200 and resp.json()["Operations"][0]["status"] == "409"
