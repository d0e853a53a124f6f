"""``function_app`` registers graph_enrich's outbox producers with the SCIM service: through the
local host (the triggers Azure runs) on Azurite, Entra's create queues the user for enrichment
and the app's write of a mapped attribute queues its write-back, each in the write's own
transaction; a GRAPH_WRITEBACK Graph would refuse stops the app from starting."""

from __future__ import annotations

import secrets

import pytest

import function_app
from devhost.server import LocalHost
from graph_enrich.errors import ConfigurationError
from graph_enrich.writeback_queue import ENRICH_QUEUE, WRITEBACK_QUEUE
from tests.graph.writeback_support import APP_ATTRIBUTES, WRITEBACK
from tests.scimclient import Client, unique

APP = "urn:scimfunc:schemas:extension:app:1.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def app_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """The host's handler rebuilt by ``function_app.router()`` from these app settings."""
    token = secrets.token_urlsafe(32)
    for name, value in {
        "SCIM_APP_TOKEN": token,
        "SCIM_APP_SCOPES": "read app:write",
        "SCIM_APP_EXTENSION_ATTRIBUTES": APP_ATTRIBUTES,
        "GRAPH_WRITEBACK": WRITEBACK,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(function_app, "_router", None)
    return token  # monkeypatch puts the session's handler back afterwards


def test_create_and_app_write_queue_in_their_transaction(
    host: tuple[LocalHost, str], app_token: str
) -> None:
    local, entra_token = host
    base = local.base_url + "/scim/v2"
    oid = "3f6e1c2a-0000-4000-8000-000000000001"
    created = Client(base, entra_token).post(
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": unique("wb") + "@contoso.com",
            "externalId": oid,
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    scim_id = created.json()["id"]
    store = function_app.store()
    assert scim_id in [e.key for e in store.outbox_read("User", ENRICH_QUEUE, 1000)]

    changed = Client(base, app_token).patch(
        f"/Users/{scim_id}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": f"{APP}:badgeId", "value": "B-42"}],
        },
    )
    assert changed.status_code == 200, changed.text
    (entry,) = [e for e in store.outbox_read("User", WRITEBACK_QUEUE, 1000) if e.key == scim_id]
    assert entry.body["patch"]["employeeId"] == "B-42"
    assert entry.body["join"]["externalId"] == oid


def test_refused_mapping_stops_the_app(
    host: tuple[LocalHost, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_APP_EXTENSION_ATTRIBUTES", APP_ATTRIBUTES)
    monkeypatch.setenv("GRAPH_WRITEBACK", "badgeId=userPrincipalName")
    monkeypatch.setattr(function_app, "_router", None)
    with pytest.raises(ConfigurationError, match="badgeId=userPrincipalName"):
        function_app.router()
