"""Group entries on a user and member entries on a group carry ``display`` names (issue 13, "so an
app needs no second lookup"), through the local host; a rename shows at once; a write's
response does not resolve them (Entra's member PATCHes pay nothing for it)."""

from __future__ import annotations

from typing import Any

from tests.scimclient import Client, unique

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def test_groups_and_members_carry_display_names(scim: Client) -> None:
    ann = scim.post(
        "/Users", {"schemas": [USER], "userName": unique("ann") + "@x", "displayName": "Ann"}
    ).json()
    bob_name = unique("bob") + "@x"
    bob = scim.post("/Users", {"schemas": [USER], "userName": bob_name}).json()
    sales_name = unique("Sales")
    sales = scim.post("/Groups", {"schemas": [GROUP], "displayName": sales_name}).json()
    add = _patch(
        {"op": "add", "path": "members", "value": [{"value": ann["id"]}, {"value": bob["id"]}]}
    )
    patched = scim.patch(f"/Groups/{sales['id']}", add)
    assert patched.status_code == 200
    assert all("display" not in m for m in patched.json().get("members", []))

    groups = scim.get(f"/Users/{ann['id']}?attributes=groups").json()["groups"]
    assert [(g["value"], g["display"]) for g in groups] == [(sales["id"], sales_name)]

    members = scim.get(f"/Groups/{sales['id']}?attributes=members&cursor=").json()["members"]
    assert {m["value"]: m["display"] for m in members} == {ann["id"]: "Ann", bob["id"]: bob_name}
    plain = scim.get(f"/Groups/{sales['id']}").json()["members"]
    assert all("display" not in m for m in plain)  # what the client wrote, as it wrote it

    page = scim.get(f"/Groups/{sales['id']}?attributes=members&count=1&cursor=").json()
    assert len(page["members"]) == 1 and page["members"][0]["display"] in ("Ann", bob_name)

    renamed = unique("Renamed")
    rename = _patch({"op": "replace", "path": "displayName", "value": renamed})
    assert scim.patch(f"/Groups/{sales['id']}", rename).status_code == 200
    groups = scim.get(f"/Users/{bob['id']}?attributes=groups").json()["groups"]
    assert groups[0]["display"] == renamed
