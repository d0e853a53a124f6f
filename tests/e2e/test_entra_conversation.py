"""Replays every request shape Microsoft Entra's provisioning service sends (ENTRA.md), in
both PATCH dialects (legacy default and ``aadOptscim062020``), through the local host, and reads
the state back after each step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.scimclient import Client, unique

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
MS_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DIALECTS = ["legacy", "aadOptscim062020"]


def entra_user(user_name: str, external_id: str) -> dict[str, Any]:
    """The POST /Users body Entra sends (Learn: "Develop and plan provisioning for a SCIM
    endpoint", request example), including the client-sent meta and empty roles."""
    return {
        "schemas": [USER, ENT],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "addresses": [],
        "displayName": "Jeff Smith",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Jeff Smith", "familyName": "Smith", "givenName": "Jeff"},
        "roles": [],
        "title": "Engineer",
        "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
        ENT: {"department": "R&D", "employeeNumber": "701984"},
    }


def op(dialect: str, name: str, path: str | None, value: Any) -> dict[str, Any]:
    """One PATCH operation as the dialect spells it: capitalised op names in the legacy one."""
    out: dict[str, Any] = {"op": name.capitalize() if dialect == "legacy" else name.lower()}
    if path is not None:
        out["path"] = path
    if value is not None:
        out["value"] = value
    return out


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


def query(scim: Client, path: str, flt: str, **extra: str) -> dict[str, Any]:
    resp = scim.get(path, params={"filter": flt, **extra})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    body = resp.json()
    for key in ("schemas", "totalResults", "Resources", "startIndex", "itemsPerPage"):
        assert key in body, f"ListResponse lacks {key}"
    return body


def test_test_connection_gets_empty_list(scim: Client) -> None:
    """Test Connection: `userName eq "<random GUID>"` must be 200 with an empty ListResponse."""
    body = query(scim, "/Users", f'userName eq "{uuid.uuid4()}"')
    assert body["totalResults"] == 0 and body["Resources"] == []
    body = query(scim, "/Groups", f'displayName eq "{uuid.uuid4()}"', excludedAttributes="members")
    assert body["totalResults"] == 0


def test_form_encoded_filter_and_unquoted_value(scim: Client) -> None:
    """Real traffic is form-encoded (`filter=externalId+eq+%22john%22`); unquoted values appear."""
    ext = unique("ext")
    name = unique("form") + "@contoso.com"
    assert scim.post("/Users", entra_user(name, ext)).status_code == 201
    raw = scim.http.get(
        f"{scim.base}/Users?filter=externalId+eq+%22{ext}%22",
        headers={"Authorization": f"Bearer {scim.token}"},
        timeout=30,
    )
    assert raw.status_code == 200 and raw.json()["totalResults"] == 1
    assert query(scim, "/Users", f"externalId eq {ext}")["totalResults"] == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_user_lifecycle(scim: Client, dialect: str) -> None:
    """Match -> create -> duplicate 409 -> PATCH in the dialect -> disable -> still found ->
    enable -> delete -> 404."""
    name = unique("Jeff") + "@Contoso.com"
    ext = unique("ext")
    # match first: nothing
    assert query(scim, "/Users", f'userName eq "{name}"')["totalResults"] == 0
    created = scim.post("/Users", entra_user(name, ext))
    assert created.status_code == 201, created.text
    user = created.json()
    uid = user["id"]
    assert user["meta"]["location"].endswith(f"/Users/{uid}")
    assert created.headers["ETag"] == user["meta"]["version"]
    assert "roles" not in user or user["roles"] == []
    # duplicate userName, case-insensitively (a create Entra retried after a timeout)
    dup = scim.post("/Users", entra_user(name.upper(), unique("ext")))
    assert dup.status_code == 409 and dup.json()["scimType"] == "uniqueness"
    # matching is case-insensitive on userName, and by externalId and work email
    assert query(scim, "/Users", f'userName eq "{name.lower()}"')["Resources"][0]["id"] == uid
    assert query(scim, "/Users", f'externalId eq "{ext}"')["Resources"][0]["id"] == uid
    assert query(scim, "/Users", f'emails[type eq "work"].value eq "{name}"')["totalResults"] == 1
    assert scim.get(f"/Users/{uid}").json()["userName"] == name

    new_mail = unique("mail") + "@contoso.com"
    if dialect == "legacy":
        ops = [
            op(dialect, "Replace", 'emails[type eq "work"].value', new_mail),
            op(dialect, "Replace", "name.givenName", "Jeffrey"),
            op(dialect, "Replace", f"{ENT}:employeeNumber", "42"),
            op(dialect, "Add", 'addresses[type eq "work"].locality', "Seattle"),
            op(dialect, "Add", 'addresses[type eq "work"].region', "WA"),
            op(dialect, "Add", 'addresses[type eq "work"].postalCode', "98052"),
        ]
    else:
        ops = [
            op(dialect, "replace", 'emails[type eq "work"].value', new_mail),
            op(
                dialect,
                "replace",
                None,
                {"name.givenName": "Jeffrey", f"{ENT}:employeeNumber": "42"},
            ),
            op(dialect, "add", 'addresses[type eq "work"].locality', "Seattle"),
            op(dialect, "add", 'addresses[type eq "work"].region', "WA"),
            op(dialect, "add", 'addresses[type eq "work"].postalCode', "98052"),
        ]
    resp = scim.patch(f"/Users/{uid}", patch(*ops))
    assert resp.status_code in (200, 204), resp.text
    got = scim.get(f"/Users/{uid}").json()
    assert [e["value"] for e in got["emails"] if e.get("type") == "work"] == [new_mail]
    assert got["name"]["givenName"] == "Jeffrey" and got["name"]["familyName"] == "Smith"
    assert got[ENT]["employeeNumber"] == "42" and got[ENT]["department"] == "R&D"
    work = [a for a in got["addresses"] if a.get("type") == "work"]
    assert len(work) == 1, "several filtered ops must merge into one created item"
    assert (work[0]["locality"], work[0]["region"], work[0]["postalCode"]) == (
        "Seattle",
        "WA",
        "98052",
    )

    # soft delete: disable (a string boolean in the legacy dialect)
    disable = "False" if dialect == "legacy" else False
    resp = scim.patch(f"/Users/{uid}", patch(op(dialect, "Replace", "active", disable)))
    assert resp.status_code in (200, 204), resp.text
    assert scim.get(f"/Users/{uid}").json()["active"] is False
    assert query(scim, "/Users", f'userName eq "{name}"')["Resources"][0]["active"] is False
    resp = scim.patch(
        f"/Users/{uid}",
        patch(op(dialect, "Replace", "active", "True" if dialect == "legacy" else True)),
    )
    assert resp.status_code in (200, 204)
    assert scim.get(f"/Users/{uid}").json()["active"] is True

    # hard delete
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert scim.get(f"/Users/{uid}").status_code == 404
    assert query(scim, "/Users", f'userName eq "{name}"')["totalResults"] == 0
    # the name is free again
    assert scim.post("/Users", entra_user(name, ext)).status_code == 201


@pytest.mark.parametrize("dialect", DIALECTS)
def test_manager(scim: Client, dialect: str) -> None:
    """Manager arrives as a plain string on the full URN path (or `manager` with
    `[{"value":..}]` in older docs); returned as {"value", "$ref"}; cleared with ""."""
    boss = scim.post("/Users", entra_user(unique("boss") + "@x.com", unique("e"))).json()["id"]
    boss2 = scim.post("/Users", entra_user(unique("boss") + "@x.com", unique("e"))).json()["id"]
    uid = scim.post("/Users", entra_user(unique("emp") + "@x.com", unique("e"))).json()["id"]
    resp = scim.patch(f"/Users/{uid}", patch(op(dialect, "Add", f"{ENT}:manager", boss)))
    assert resp.status_code in (200, 204), resp.text
    manager = scim.get(f"/Users/{uid}").json()[ENT]["manager"]
    assert manager["value"] == boss and manager["$ref"].endswith(f"/Users/{boss}")
    found = query(scim, "/Users", f'id eq "{uid}" and manager eq "{boss}"', attributes="id")
    assert found["totalResults"] == 1 and set(found["Resources"][0]) <= {"id", "schemas"}
    # older docs: path "manager" with a list of {"value"}
    scim.patch(f"/Users/{uid}", patch(op(dialect, "Replace", "manager", [{"value": boss2}])))
    assert scim.get(f"/Users/{uid}").json()[ENT]["manager"]["value"] == boss2
    assert query(scim, "/Users", f'id eq "{uid}" and manager eq "{boss}"')["totalResults"] == 0
    # remove = replace with ""
    scim.patch(f"/Users/{uid}", patch(op(dialect, "Replace", f"{ENT}:manager", "")))
    assert "manager" not in scim.get(f"/Users/{uid}").json().get(ENT, {})


def test_roles_as_json_string(scim: Client) -> None:
    """`roles` may arrive as Add with value [{"value": "<JSON string>"}]."""
    uid = scim.post("/Users", entra_user(unique("r") + "@x.com", unique("e"))).json()["id"]
    role = '{"id":"a1","value":"Admin","displayName":"Admin"}'
    resp = scim.patch(
        f"/Users/{uid}", patch({"op": "Add", "path": "roles", "value": [{"value": role}]})
    )
    assert resp.status_code in (200, 204), resp.text
    assert scim.get(f"/Users/{uid}").json()["roles"][0]["value"] == role


@pytest.mark.parametrize("dialect", DIALECTS)
def test_group_lifecycle(scim: Client, dialect: str) -> None:
    """Group create with Microsoft's schema URN, match by displayName with
    excludedAttributes=members, add many members, membership checks in both forms, remove only
    the named members, replace = set exactly, rename, delete."""
    members = [
        scim.post("/Users", entra_user(unique("m") + "@x.com", unique("e"))).json()["id"]
        for _ in range(5)
    ]
    name = unique("Group Sales")
    body = {
        "schemas": [GROUP, MS_GROUP],
        "externalId": unique("gx"),
        "displayName": name,
        "meta": {"resourceType": "Group"},
    }
    created = scim.post("/Groups", body)
    assert created.status_code == 201, created.text
    gid = created.json()["id"]
    assert scim.post("/Groups", {**body, "displayName": name.upper()}).status_code == 409
    found = query(scim, "/Groups", f'displayName eq "{name}"', excludedAttributes="members")
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]
    got = scim.get(f"/Groups/{gid}", params={"excludedAttributes": "members"})
    assert got.status_code == 200 and "members" not in got.json()

    add = op(dialect, "Add", "members", [{"value": m} for m in members])
    resp = scim.patch(f"/Groups/{gid}", patch(add))
    assert resp.status_code in (200, 204), resp.text
    for m in members[:2]:
        hit = query(scim, "/Groups", f'id eq "{gid}" and members eq "{m}"', attributes="id")
        assert hit["totalResults"] == 1
        hit = query(
            scim,
            "/Groups",
            f'id eq "{gid}" and members[value eq "{m}"]',
            excludedAttributes="members",
        )
        assert hit["totalResults"] == 1 and "members" not in hit["Resources"][0]

    if dialect == "legacy":
        remove = op(dialect, "Remove", "members", [{"value": members[0]}])
    else:
        remove = op(dialect, "remove", f'members[value eq "{members[0]}"]', None)
    assert scim.patch(f"/Groups/{gid}", patch(remove)).status_code in (200, 204)
    now = {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]}
    assert now == set(members[1:]), "remove must drop only the named member"
    miss = query(scim, "/Groups", f'id eq "{gid}" and members eq "{members[0]}"')
    assert miss["totalResults"] == 0

    replace = op(dialect, "Replace", "members", [{"value": members[0]}, {"value": members[1]}])
    assert scim.patch(f"/Groups/{gid}", patch(replace)).status_code in (200, 204)
    now = {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]}
    assert now == {members[0], members[1]}

    renamed = unique("Renamed")
    rename = op(dialect, "Replace", "displayName", renamed)
    assert scim.patch(f"/Groups/{gid}", patch(rename)).status_code in (200, 204)
    assert query(scim, "/Groups", f'displayName eq "{renamed}"')["totalResults"] == 1
    assert query(scim, "/Groups", f'displayName eq "{name}"')["totalResults"] == 0

    # deleting a user removes its memberships
    assert scim.delete(f"/Users/{members[1]}").status_code in (200, 204)
    now = {m["value"] for m in scim.get(f"/Groups/{gid}").json()["members"]}
    assert now == {members[0]}

    assert scim.delete(f"/Groups/{gid}").status_code == 204
    assert scim.get(f"/Groups/{gid}").status_code == 404


def test_unknown_ids_are_404(scim: Client) -> None:
    """Unknown id on GET/PUT/PATCH/DELETE: 404 with a SCIM error."""
    missing = str(uuid.uuid4())
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        for path in (f"/Users/{missing}", f"/Groups/{missing}"):
            body = None
            if method == "PUT":
                body = entra_user("x@x.com", "x")
            if method == "PATCH":
                body = patch({"op": "replace", "path": "active", "value": False})
            resp = scim.request(method, path, body)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json()["status"] == "404"


def test_paging(scim: Client) -> None:
    """startIndex/count paging returns the right slices of one consistent ordering."""
    tag = unique("page")
    ids = {
        scim.post("/Users", {**entra_user(f"{tag}-{i}@x.com", unique("e")), "title": tag}).json()[
            "id"
        ]
        for i in range(5)
    }
    seen: list[str] = []
    for start in (1, 3, 5):
        body = query(
            scim, "/Users", f'title eq "{tag}"', startIndex=str(start), count="2", sortBy="userName"
        )
        assert body["totalResults"] == 5 and body["startIndex"] == start
        seen += [r["id"] for r in body["Resources"]]
    assert len(seen) == 5 and set(seen) == ids


def test_unauthorized(scim: Client) -> None:
    """Missing/wrong token: 401 with a SCIM error body; the token is never echoed."""
    resp = scim.get("/Users", token="wrong-token")
    assert resp.status_code == 401 and resp.json()["status"] == "401"
    assert "wrong-token" not in resp.text
    raw = scim.http.get(f"{scim.base}/Users", timeout=30)
    assert raw.status_code == 401
