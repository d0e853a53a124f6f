"""The timer and the webhook through the local Functions host (devhost), over Azure Table
Storage (Azurite): the same triggers Azure runs, with msgraph-sdk pointed at the fake Graph
through GRAPH_BASE_URL. Also the storage cost per changed user, on TableStore."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

import graph_enrich.notifications as notifications
from devhost.server import LocalHost
from graph_enrich import GRAPH_USER_SCHEMA, run_sync
from graph_enrich.notifications import BACKGROUND
from scim_core.store.table import TableStore
from tests.graph.conftest import FakeCredential, provision
from tests.graph.fake_graph import FakeGraph
from tests.scimclient import Client

EXT = GRAPH_USER_SCHEMA


@pytest.fixture
def graph_env(
    fake: FakeGraph, host: tuple[LocalHost, str], monkeypatch: pytest.MonkeyPatch
) -> LocalHost:
    """The session's host, its Graph settings pointed at this test's fake Graph. The app reads
    GRAPH_* on every invocation, as from Azure app settings."""
    local, _ = host
    monkeypatch.setenv("GRAPH_BASE_URL", fake.base_url)
    monkeypatch.setenv("GRAPH_CLIENT_STATE", "e2e-client-state")
    monkeypatch.setattr(
        "graph_enrich.credentials.build_credential", lambda settings: FakeCredential()
    )
    return local


def _entra_user(scim: Client, upn: str, object_id: str) -> str:
    created = scim.post(
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": upn,
            "externalId": object_id,
            "active": True,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_the_timer_enriches_users_over_table_storage(fake, graph_env, scim):
    """Entra provisions over SCIM; `graph_sync` (what `make sync` fires) enriches; a SCIM GET
    shows the extension."""
    upn = f"{uuid.uuid4().hex[:8]}@contoso.com"
    object_id = fake.put_user(
        userPrincipalName=upn,
        jobTitle="Designer",
        department="Design",
        officeLocation="19/2109",
        accountEnabled=True,
    )
    fake.put_user(userPrincipalName="not-provisioned@contoso.com", accountEnabled=True)
    scim_id = _entra_user(scim, upn, object_id)
    graph_env.fire_timer("graph_sync")
    user = scim.get(f"/Users/{scim_id}").json()
    assert user[EXT]["jobTitle"] == "Designer" and user[EXT]["objectId"] == object_id
    fake.delete_user(object_id)
    graph_env.fire_timer("graph_sync")
    assert scim.get(f"/Users/{scim_id}").json()[EXT]["removedReason"] == "changed"


def test_webhook_handshake_subscription_and_early_sync(fake, graph_env, scim, monkeypatch):
    """The timer creates the subscription (Graph validates the URL against the live webhook
    route); a change notification then brings the change in without waiting for the timer."""
    monkeypatch.setenv("GRAPH_NOTIFICATION_URL", f"{graph_env.base_url}/graph/notifications")
    monkeypatch.setattr(notifications, "DEBOUNCE_SECONDS", 0.1)
    upn = f"{uuid.uuid4().hex[:8]}@contoso.com"
    object_id = fake.put_user(userPrincipalName=upn, jobTitle="Intern", accountEnabled=True)
    scim_id = _entra_user(scim, upn, object_id)
    graph_env.fire_timer("graph_sync")
    assert len(fake.subscriptions) == 1  # created: the validation handshake succeeded
    fake.put_user(object_id, jobTitle="Engineer")
    assert fake.notify(object_id) == [202]
    assert BACKGROUND.wait_idle(60)
    assert scim.get(f"/Users/{scim_id}").json()[EXT]["jobTitle"] == "Engineer"
    forged = scim.http.post(
        f"{graph_env.base_url}/graph/notifications",
        json={"value": [{"clientState": "guess"}]},
        timeout=10,
    )
    assert forged.status_code == 202


def test_storage_requests_per_changed_user(table_store: TableStore, fake, settings, options):
    """Lookup + read + conditional replace: at most 3 storage requests per changed user,
    beyond the run's fixed cost (lease, checkpoint, status), measured on Azure Table Storage."""
    ids = []
    for n in range(12):
        object_id = fake.put_user(userPrincipalName=f"u{n}@contoso.com", accountEnabled=True)
        provision(table_store, f"u{n}@contoso.com", object_id)
        ids.append(object_id)
    fake.page_size = 50
    run_sync(settings, table_store, options)
    idle = run_sync(settings, table_store, options)  # an empty delta round: the fixed cost
    assert idle.changes == 0 and idle.storage_requests is not None
    for object_id in ids[:10]:
        fake.put_user(object_id, jobTitle="Engineer")
    busy = run_sync(settings, table_store, options)
    assert (busy.changes, busy.enriched, busy.pages) == (10, 10, idle.pages)
    per_user = (busy.storage_requests - idle.storage_requests) / busy.enriched
    assert per_user <= 3, (busy.storage_requests, idle.storage_requests)


def test_end_to_end_on_table_storage_resumes_and_resyncs(table_store, fake, settings, options):
    """The whole loop on TableStore: a multi-page initial round, a delta round, a resync."""
    ids = [
        fake.put_user(userPrincipalName=f"t{n}@contoso.com", accountEnabled=True) for n in range(5)
    ]
    scim_ids = [provision(table_store, f"t{n}@contoso.com", o) for n, o in enumerate(ids)]
    assert run_sync(settings, table_store, options).enriched == 5
    fake.put_user(ids[3], officeLocation="Oslo")
    assert run_sync(settings, table_store, options).enriched == 1
    fake.expire_tokens()
    report = run_sync(settings, table_store, dataclasses.replace(options))
    assert report.resyncs == 1 and report.outcome == "complete"
    assert table_store.get("User", scim_ids[3]).doc[EXT]["officeLocation"] == "Oslo"
