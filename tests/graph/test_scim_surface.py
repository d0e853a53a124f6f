"""The enrichment as SCIM clients see it: a published extension schema (RFC 7643 §3.3, §7),
returned and filterable like any attribute, read-only to clients (RFC 7643 §2.2 "readOnly:
the attribute SHALL NOT be modified"; RFC 7644 §3.5.1/§3.5.2: such values are ignored)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph_enrich import GRAPH_USER_SCHEMA
from scim_core.http import ScimRequest
from scim_core.schema import Schema
from scim_core.service import ScimService
from scim_core.store import Store
from tests.graph.conftest import enrichment, provision, sync
from tests.scimclient import Client

EXT = GRAPH_USER_SCHEMA
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _call(
    store: Store, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = ScimService(store).handle(
        ScimRequest(
            method,
            path,
            "https://scim.example/scim/v2",
            query=query or {},
            headers={"content-type": "application/scim+json"},
            body=json.dumps(body).encode() if body is not None else b"",
        )
    )
    return response.status, json.loads(response.body) if response.body else None


def test_the_extension_schema_is_published(scim: Client):
    """/Schemas serves it, /ResourceTypes/User lists it as an optional extension."""
    schema = scim.get(f"/Schemas/{EXT}")
    assert schema.status_code == 200 and schema.json()["id"] == EXT
    listed = {s["id"] for s in scim.get("/Schemas").json()["Resources"]}
    assert EXT in listed
    extensions = scim.get("/ResourceTypes/User").json()["schemaExtensions"]
    assert {"schema": EXT, "required": False} in extensions


def test_every_attribute_is_read_only():
    schema = Schema.load("graph_user.json")
    assert schema.id == EXT and not EXT.startswith("urn:ietf:")
    for attribute in schema.attributes:
        assert attribute.mutability == "readOnly", attribute.name
        assert all(sub.mutability == "readOnly" for sub in attribute.sub_attributes)


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": f"{EXT}:jobTitle", "value": "CEO"},
        {"op": "add", "value": {f"{EXT}:jobTitle": "CEO"}},
        {"op": "add", "value": {EXT: {"jobTitle": "CEO", "deprovisioned": True}}},
        {"op": "remove", "path": f"{EXT}:jobTitle"},
    ],
    ids=["replace-path", "pathless-dotted", "pathless-urn", "remove"],
)
def test_clients_cannot_patch_the_extension(fake, settings, store, options, operation):
    """PATCH naming the extension's attributes is ignored silently (Entra-style leniency)."""
    object_id = fake.put_user(
        userPrincipalName="a@contoso.com", jobTitle="Engineer", accountEnabled=True
    )
    scim_id = provision(store, "a@contoso.com", object_id)
    sync(settings, store, options)
    before = enrichment(store, scim_id)
    status, _ = _call(
        store, "PATCH", f"/Users/{scim_id}", {"schemas": [PATCH], "Operations": [operation]}
    )
    assert status == 200 and enrichment(store, scim_id) == before


def test_clients_cannot_create_or_replace_with_extension_values(store):
    """POST and PUT bodies carrying the extension: the values are dropped."""
    status, created = _call(
        store,
        "POST",
        "/Users",
        {"userName": "b@contoso.com", "schemas": [EXT], EXT: {"jobTitle": "CEO"}},
    )
    assert status == 201 and EXT not in created
    assert enrichment(store, created["id"]) == {}
    status, replaced = _call(
        store,
        "PUT",
        f"/Users/{created['id']}",
        {"userName": "b@contoso.com", EXT: {"objectId": "forged", "deprovisioned": False}},
    )
    assert status == 200 and EXT not in replaced


def test_a_put_keeps_the_enrichment(fake, settings, store, options):
    """readOnly, server-maintained data survives a PUT (RFC 7643 §2.2)."""
    object_id = fake.put_user(
        userPrincipalName="c@contoso.com", jobTitle="Engineer", accountEnabled=True
    )
    scim_id = provision(store, "c@contoso.com", object_id)
    sync(settings, store, options)
    _call(store, "PUT", f"/Users/{scim_id}", {"userName": "c@contoso.com", "externalId": object_id})
    assert enrichment(store, scim_id)["jobTitle"] == "Engineer"


def test_enriched_attributes_are_returned_and_filterable(fake, settings, store, options):
    """GET returns the extension (and names it in ``schemas``); a filter on a full URN path
    finds users by it; ``attributes`` projects it like any other attribute."""
    object_id = fake.put_user(
        userPrincipalName="d@contoso.com",
        department="R&D",
        jobTitle="Engineer",
        accountEnabled=True,
    )
    scim_id = provision(store, "d@contoso.com", object_id)
    provision(store, "e@contoso.com", "no-graph-user")
    sync(settings, store, options)
    status, user = _call(store, "GET", f"/Users/{scim_id}")
    assert status == 200 and EXT in user["schemas"] and user[EXT]["department"] == "R&D"
    status, found = _call(store, "GET", "/Users", query={"filter": f'{EXT}:department eq "r&d"'})
    assert [u["id"] for u in found["Resources"]] == [scim_id]
    status, found = _call(
        store,
        "GET",
        "/Users",
        query={"filter": f"{EXT}:deprovisioned eq false", "attributes": f"{EXT}:jobTitle"},
    )
    assert found["Resources"] == [
        {"schemas": found["Resources"][0]["schemas"], "id": scim_id, EXT: {"jobTitle": "Engineer"}}
    ]
