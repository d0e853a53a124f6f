"""Users Entra provisions after Graph reported their last change are enriched in the next
run (graph_enrich/newcomers.py), with one Graph read each, batched; and /Schemas publishes only
the enrichment properties the instance selects (scim_core/graph_schema.py)."""

from __future__ import annotations

import json

import pytest

from graph_enrich import SyncOptions
from graph_enrich.writeback_queue import ENRICH_QUEUE
from scim_core.graph_schema import graph_user_schema
from scim_core.http import ScimRequest
from scim_core.schema import GRAPH_USER_SCHEMA, default_resource_types
from scim_core.service import ScimService
from scim_core.settings import Settings
from scim_core.store import Store
from scim_core.store.memory import MemoryStore
from tests.graph.conftest import enrichment, sync
from tests.graph.fake_graph import FakeGraph
from tests.graph.writeback_support import entra_create, entra_set_active, service

YEAR = 10**7


@pytest.fixture
def run_options(options: SyncOptions) -> SyncOptions:
    """The hourly reconciliation pass kept out: the newcomer queue alone must do it."""
    options.reconcile_every = YEAR
    return options


def queued(store: Store) -> list[str]:
    return [e.key for e in store.outbox_read("User", ENRICH_QUEUE, 1000)]


def test_provisioned_after_graphs_last_change_enriched_next_run(
    fake: FakeGraph, store: MemoryStore, settings: Settings, run_options: SyncOptions
) -> None:
    """Graph's initial round saw the users before Entra provisioned them (unmatched then);
    they do not change in Entra afterwards, so no delta round brings them again. Their SCIM
    create queued them: the next run reads them, one GET each in one ``$batch``."""
    oids = [
        fake.put_user(userPrincipalName=f"new{n}@contoso.com", jobTitle=f"Role {n}")
        for n in range(3)
    ]
    first = sync(settings, store, run_options)  # initial round + the (empty) first reconcile
    assert first.unmatched == 3
    svc = service(store, settings)
    ids = [entra_create(svc, f"new{n}@contoso.com", oid) for n, oid in enumerate(oids)]
    assert queued(store) == sorted(ids)
    before = len(fake.requests)

    report = sync(settings, store, run_options)

    assert report.newcomers == 3, report.summary()
    for n, scim_id in enumerate(ids):
        assert enrichment(store, scim_id)["jobTitle"] == f"Role {n}"
        assert enrichment(store, scim_id)["objectId"] == oids[n]
    assert queued(store) == []
    (batch,) = fake.batch.batches
    assert [r["method"] for r in batch] == ["GET"] * 3
    assert all("$select=id," in r["url"] and "$expand=manager" in r["url"] for r in batch)
    # Graph requests of the run: the delta round (one page, nothing changed) and one batch.
    assert len(fake.requests) - before == 2


def test_reenabled_user_is_queued(
    fake: FakeGraph, store: MemoryStore, settings: Settings, run_options: SyncOptions
) -> None:
    """Entra's re-enable (active false -> true) queues the user again; disabling does not."""
    oid = fake.put_user(userPrincipalName="back@contoso.com")
    svc = service(store, settings)
    scim_id = entra_create(svc, "back@contoso.com", oid)
    sync(settings, store, run_options)
    assert queued(store) == []
    entra_set_active(svc, scim_id, False)
    assert queued(store) == []
    entra_set_active(svc, scim_id, True)
    assert queued(store) == [scim_id]


def test_unknown_to_graph_is_left_to_reconciliation(
    fake: FakeGraph, store: MemoryStore, settings: Settings, run_options: SyncOptions
) -> None:
    """A user Graph does not have (404) leaves the queue; the reconciliation pass asks again
    later (a day apart), so the queue never grows with it."""
    svc = service(store, settings)
    entra_create(svc, "ghost@contoso.com", "00000000-0000-0000-0000-000000000404")
    report = sync(settings, store, run_options)
    assert report.newcomers == 0
    assert queued(store) == []


def test_throttled_read_stays_queued(
    fake: FakeGraph, store: MemoryStore, settings: Settings, run_options: SyncOptions
) -> None:
    from tests.graph.fake_graph import Fault

    oid = fake.put_user(userPrincipalName="wait@contoso.com")
    sync(settings, store, run_options)  # Graph's round passes before Entra provisions
    svc = service(store, settings)
    scim_id = entra_create(svc, "wait@contoso.com", oid)
    fake.fail(
        Fault(
            429,
            "TooManyRequests",
            retry_after=3600,
            match=lambda m, p: m == "GET" and p.endswith(oid),
        )
    )
    report = sync(settings, store, run_options)
    assert report.newcomers_waiting == 1
    assert queued(store) == [scim_id]
    assert sync(settings, store, run_options).newcomers == 1
    assert queued(store) == []


@pytest.mark.parametrize(
    ("graph_select", "published", "absent"),
    [
        (None, {"jobTitle", "businessPhones", "managerId"}, {"city", "usageLocation"}),
        ("city,country", {"city", "country", "userPrincipalName"}, {"jobTitle", "managerId"}),
    ],
    ids=["default-select", "operator-select"],
)
def test_schemas_publish_only_selected_properties(
    graph_select: str | None, published: set[str], absent: set[str]
) -> None:
    """``GET /Schemas/{graph extension}`` lists what ``$select`` fills (plus the service's own
    attributes), not every property the sync could hold."""
    types = default_resource_types(graph_extension=graph_user_schema(graph_select))
    response = ScimService(MemoryStore(), types).handle(
        ScimRequest("GET", f"/Schemas/{GRAPH_USER_SCHEMA}", "https://scim.example/scim/v2")
    )
    assert response.status == 200
    names = {a["name"] for a in json.loads(response.body)["attributes"]}
    assert published <= names
    assert not names & absent
    assert {"objectId", "syncedDateTime", "writebackDateTime", "writebackError"} <= names
