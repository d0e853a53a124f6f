"""What the write-back tests share: an instance whose app declares HR and communications
attributes (the seeds' scenario 6) mapped to Graph, and the two writers of a SCIM user --
Entra (provisioning) and the app (``app:write``) -- going through the SCIM service."""

from __future__ import annotations

import json
from typing import Any

from graph_enrich.writeback_queue import outbox_producers
from scim_core.app_extension import app_user_schema
from scim_core.graph_schema import graph_user_schema
from scim_core.http import ScimRequest
from scim_core.schema import APP_USER_SCHEMA, default_resource_types
from scim_core.service import ScimService
from scim_core.settings import Settings
from scim_core.store import Store

APP_ATTRIBUTES = json.dumps(
    [
        {"name": "phoneNumber", "type": "string"},
        {"name": "badgeId", "type": "string"},
        {"name": "hireDate", "type": "dateTime"},
    ]
)
WRITEBACK = "phoneNumber=businessPhones,badgeId=employeeId,hireDate=employeeHireDate"
BASE = "https://scim.example/scim/v2"


def writeback_settings(graph_base_url: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "GRAPH_BASE_URL": graph_base_url,
            "SCIM_APP_EXTENSION_ATTRIBUTES": APP_ATTRIBUTES,
            "GRAPH_WRITEBACK": WRITEBACK,
            **extra,
        }
    )


def service(store: Store, settings: Settings) -> ScimService:
    """The SCIM service as ``scim_core.wiring`` builds it for these settings."""
    types = default_resource_types(
        app_extension=app_user_schema(settings.app_extension_attributes),
        graph_extension=graph_user_schema(settings.graph_select, settings.graph_join),
    )
    return ScimService(store, types, producers=outbox_producers(settings))


def _send(svc: ScimService, method: str, path: str, body: Any, *, app: bool) -> dict[str, Any]:
    response = svc.handle(
        ScimRequest(
            method,
            path,
            BASE,
            headers={"content-type": "application/scim+json"},
            body=json.dumps(body).encode(),
            app_write=app,
        )
    )
    assert response.status in (200, 201), response.body
    out = dict(json.loads(response.body))
    return out


def entra_create(svc: ScimService, user_name: str, external_id: str | None) -> str:
    """POST /Users as Entra sends it (externalId = the Entra object id)."""
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": True,
    }
    if external_id is not None:
        body["externalId"] = external_id
    return str(_send(svc, "POST", "/Users", body, app=False)["id"])


def entra_set_active(svc: ScimService, scim_id: str, active: bool) -> None:
    """Entra's (non-compliant, ENTRA.md) PATCH dialect for disabling and re-enabling."""
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "True" if active else "False"}],
    }
    _send(svc, "PATCH", f"/Users/{scim_id}", body, app=False)


def app_write(svc: ScimService, scim_id: str, **values: Any) -> None:
    """The app's PATCH of its own extension (scope app:write)."""
    ops = [
        {"op": "replace", "path": f"{APP_USER_SCHEMA}:{name}", "value": value}
        for name, value in values.items()
    ]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
    _send(svc, "PATCH", f"/Users/{scim_id}", body, app=True)


def app_values(store: Store, scim_id: str) -> dict[str, Any]:
    return dict(store.get("User", scim_id).doc.get(APP_USER_SCHEMA) or {})
