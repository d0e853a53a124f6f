"""The Graph enrichment's writes are committed changes too: each writes one event, in its own
transaction, marked ``origin: enrichment`` (issue 13), at no extra storage request."""

from __future__ import annotations

from typing import Any

import pytest

from graph_enrich import run_sync
from graph_enrich.sync import SyncOptions
from scim_core.events.feed import EventFeed
from scim_core.settings import Settings
from scim_core.store import Store
from scim_core.store.memory import MemoryStore
from scim_core.store.table import TableStore
from tests.graph.conftest import provision
from tests.graph.fake_graph import FakeGraph


def _on(settings: Settings) -> Settings:
    return Settings.from_env({**settings.as_env(), "SCIM_EVENTS": "notice"})


def _events(store: Store) -> list[dict[str, Any]]:
    pending, more = EventFeed(store).pending(999)
    assert not more
    return [p.entry.body for p in pending]


@pytest.fixture(params=["memory", "table"])
def any_store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    table: TableStore = request.getfixturevalue("table_store")
    return table


def test_each_enrichment_writes_one_enrichment_event(
    any_store: Store, fake: FakeGraph, settings: Settings, options: SyncOptions
) -> None:
    object_ids = [
        fake.put_user(userPrincipalName=f"e{n}@contoso.com", accountEnabled=True) for n in range(3)
    ]
    scim_ids = [provision(any_store, f"e{n}@contoso.com", o) for n, o in enumerate(object_ids)]
    assert _events(any_store) == []  # provisioned with events off: none
    assert run_sync(_on(settings), any_store, options).enriched == 3
    events = _events(any_store)
    assert sorted(e["id"] for e in events) == sorted(scim_ids)
    for event in events:
        assert event["origin"] == "enrichment"
        (uri,) = event["events"]
        assert uri == "urn:ietf:params:scim:event:prov:patch:notice"
        names = event["events"][uri]["attributes"]
        assert names and all(n.startswith("urn:") for n in names), names
    # Nothing changed in Graph: the next run writes nothing, so no event either.
    assert run_sync(_on(settings), any_store, options).enriched == 0
    assert len(_events(any_store)) == 3


def test_events_cost_the_enrichment_no_storage_request(
    table_store: TableStore, fake: FakeGraph, settings: Settings, options: SyncOptions
) -> None:
    object_ids = [
        fake.put_user(userPrincipalName=f"c{n}@contoso.com", accountEnabled=True) for n in range(8)
    ]
    for n, o in enumerate(object_ids):
        provision(table_store, f"c{n}@contoso.com", o)
    fake.page_size = 50
    run_sync(settings, table_store, options)
    costs = {}
    for mode, title in (("off", "A"), ("notice", "B")):
        run_sync(settings, table_store, options)  # settle: an empty round first
        for o in object_ids:
            fake.put_user(o, jobTitle=title)
        env = {**settings.as_env(), "SCIM_EVENTS": mode}
        report = run_sync(Settings.from_env(env), table_store, options)
        assert report.enriched == 8
        costs[mode] = report.storage_requests
    assert costs["off"] == costs["notice"], costs
