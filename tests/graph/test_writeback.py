"""Write-back of the app's data to Entra (graph_enrich/writeback.py) against the fake Graph's
``$batch`` and ``PATCH /users/{id}`` (tests/graph/fake_batch.py): batching, mixed outcomes,
throttling inside a batch, crash and resume, and no loop through delta sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from graph_enrich import SyncOptions
from graph_enrich.writeback_queue import WRITEBACK_QUEUE
from scim_core.schema import GRAPH_USER_SCHEMA
from scim_core.settings import Settings
from scim_core.store import Store
from scim_core.store.memory import MemoryStore
from tests.graph.conftest import sync
from tests.graph.fake_graph import FakeGraph, Fault
from tests.graph.writeback_support import (
    app_values,
    app_write,
    entra_create,
    service,
    writeback_settings,
)

YEAR = 10**7  # reconcile_every: the reconciliation pass stays out of these runs


@pytest.fixture(params=["memory", "table"])
def any_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The memory store, and the Table store on Azurite (the outbox's etags are the store's)."""
    if request.param == "memory":
        yield MemoryStore()
    else:
        yield request.getfixturevalue("table_store")


@pytest.fixture
def wb_settings(fake: FakeGraph) -> Settings:
    return writeback_settings(fake.base_url)


@pytest.fixture
def run_options(options: SyncOptions) -> SyncOptions:
    options.reconcile_every = YEAR
    return options


def patch_batches(fake: FakeGraph) -> list[list[dict[str, Any]]]:
    """The write-back's batches (the newcomers' GET batches left out)."""
    return [b for b in fake.batch.batches if all(r["method"] == "PATCH" for r in b)]


def patches(fake: FakeGraph) -> list[dict[str, Any]]:
    return [r for batch in patch_batches(fake) for r in batch]


def pending(store: Store) -> list[str]:
    return [e.key for e in store.outbox_read("User", WRITEBACK_QUEUE, 1000)]


def graph_ext(store: Store, scim_id: str) -> dict[str, Any]:
    return dict(store.get("User", scim_id).doc.get(GRAPH_USER_SCHEMA) or {})


def test_writes_the_apps_change_to_entra(
    fake: FakeGraph, any_store: Store, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """The app's PATCH queues one entry; the run sends ``PATCH /users/{objectId}`` in a
    ``$batch`` with the mapped properties, Graph answers 204, the entry goes, and the user
    shows when it was written."""
    oid = fake.put_user(userPrincipalName="ada@contoso.com", displayName="Ada")
    svc = service(any_store, wb_settings)
    scim_id = entra_create(svc, "ada@contoso.com", oid)
    app_write(svc, scim_id, phoneNumber="+1 555 0100", badgeId="B-17", hireDate="2026-02-01")
    assert pending(any_store) == [scim_id]

    report = sync(wb_settings, any_store, run_options)

    assert report.written_back == 1 and report.writeback_refused == 0, report.summary()
    (patch,) = patches(fake)
    assert patch["url"] == f"/users/{oid}"
    assert patch["body"] == {
        "businessPhones": ["+1 555 0100"],
        "employeeId": "B-17",
        "employeeHireDate": "2026-02-01T00:00:00Z",
    }
    assert fake.users[oid].props["employeeId"] == "B-17"
    assert pending(any_store) == []
    assert "writebackDateTime" in graph_ext(any_store, scim_id)


def test_batch_with_mixed_outcomes(
    fake: FakeGraph, any_store: Store, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """One batch: a cloud user (204), a user synced from on-premises AD (400: its properties
    are mastered on-premises) and a user Graph does not have (404). The refused ones carry
    Graph's error on the user and are not retried; the run counts them."""
    cloud = fake.put_user(userPrincipalName="cloud@contoso.com")
    synced = fake.put_user(userPrincipalName="synced@contoso.com", onPremisesSyncEnabled=True)
    svc = service(any_store, wb_settings)
    ids = {
        "cloud": entra_create(svc, "cloud@contoso.com", cloud),
        "synced": entra_create(svc, "synced@contoso.com", synced),
        "gone": entra_create(svc, "gone@contoso.com", "00000000-0000-0000-0000-00000000dead"),
    }
    for scim_id in ids.values():
        app_write(svc, scim_id, badgeId="B-1")

    report = sync(wb_settings, any_store, run_options)

    assert (report.written_back, report.writeback_refused) == (1, 2), report.summary()
    assert len(patch_batches(fake)) == 1
    assert pending(any_store) == []
    assert "writebackError" not in graph_ext(any_store, ids["cloud"])
    assert "on-premises mastered" in graph_ext(any_store, ids["synced"])["writebackError"]
    assert graph_ext(any_store, ids["synced"])["writebackError"].startswith("400 ")
    assert "Request_ResourceNotFound" in graph_ext(any_store, ids["gone"])["writebackError"]
    # Not retried: the next run sends nothing.
    sync(wb_settings, any_store, run_options)
    assert len(patches(fake)) == 3


def test_batches_hold_at_most_twenty(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    svc = service(store, wb_settings)
    for n in range(45):
        oid = fake.put_user(userPrincipalName=f"u{n}@contoso.com")
        app_write(svc, entra_create(svc, f"u{n}@contoso.com", oid), badgeId=f"B-{n}")
    report = sync(wb_settings, store, run_options)
    assert report.written_back == 45
    # The three batches are in flight together: any arrival order.
    assert sorted(len(b) for b in patch_batches(fake)) == [5, 20, 20]


def test_throttled_item_is_resent_after_its_retry_after(
    fake: FakeGraph,
    store: MemoryStore,
    wb_settings: Settings,
    run_options: SyncOptions,
    sleeps: Any,
) -> None:
    """Graph throttles one request inside a 200 batch (429 with its own Retry-After): the
    others are done, that one is resent alone after the wait (Learn, "Microsoft Graph
    throttling guidance")."""
    oids = [fake.put_user(userPrincipalName=f"t{n}@contoso.com") for n in range(3)]
    svc = service(store, wb_settings)
    for n, oid in enumerate(oids):
        app_write(svc, entra_create(svc, f"t{n}@contoso.com", oid), badgeId=f"B-{n}")
    fake.fail(
        Fault(
            429,
            "TooManyRequests",
            retry_after=7,
            match=lambda method, path: method == "PATCH" and path.endswith(oids[1]),
        )
    )
    report = sync(wb_settings, store, run_options)
    assert report.written_back == 3, report.summary()
    assert sleeps.waits == [7]
    assert [len(b) for b in patch_batches(fake)] == [3, 1]
    assert patch_batches(fake)[1][0]["url"] == f"/users/{oids[1]}"


def test_throttled_past_the_budget_waits_for_the_next_run(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """A Retry-After longer than the run has left: the entry stays, the next run writes it."""
    oid = fake.put_user(userPrincipalName="slow@contoso.com")
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "slow@contoso.com", oid)
    app_write(svc, scim_id, badgeId="B-9")
    fake.fail(Fault(503, "serviceNotAvailable", retry_after=3600, match=lambda m, p: m == "PATCH"))
    first = sync(wb_settings, store, run_options)
    assert (first.written_back, first.writeback_waiting) == (0, 1), first.summary()
    assert pending(store) == [scim_id]
    second = sync(wb_settings, store, run_options)
    assert second.written_back == 1
    assert fake.users[oid].props["employeeId"] == "B-9"


def test_crash_before_removal_resumes(
    fake: FakeGraph,
    store: MemoryStore,
    wb_settings: Settings,
    run_options: SyncOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process dies after Graph accepted the PATCH, before the entry was removed: the
    next run sends it again (PATCH is idempotent) and then removes it."""
    oid = fake.put_user(userPrincipalName="crash@contoso.com")
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "crash@contoso.com", oid)
    app_write(svc, scim_id, badgeId="B-3")

    remove = store.outbox_remove

    def die(rtype: str, queue: str, entries: Any) -> int:
        if queue == WRITEBACK_QUEUE:
            raise KeyboardInterrupt("host killed")  # not an Exception: nothing catches it
        return remove(rtype, queue, entries)

    with monkeypatch.context() as m:
        m.setattr(store, "outbox_remove", die)
        with pytest.raises(KeyboardInterrupt):
            sync(wb_settings, store, run_options)
    assert pending(store) == [scim_id]
    assert fake.users[oid].props["employeeId"] == "B-3"
    report = sync(wb_settings, store, run_options)
    assert report.written_back == 1
    assert pending(store) == []
    assert len(patches(fake)) == 2


def test_newer_app_write_during_the_run_is_written_next_run(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """The app writes again while its earlier value is in flight to Graph: the entry was
    rewritten (another ETag), so the run keeps it, and the next run writes the newer value."""
    oid = fake.put_user(userPrincipalName="race@contoso.com")
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "race@contoso.com", oid)
    app_write(svc, scim_id, badgeId="OLD")
    written = []

    def meanwhile(request: Any) -> None:
        # The first batch reads the newcomer (graph_enrich/newcomers.py); the second writes.
        if request.path.endswith("$batch") and fake.batch.batches and not written:
            written.append(True)
            app_write(svc, scim_id, badgeId="NEW")

    fake.on_request = meanwhile
    sync(wb_settings, store, run_options)
    fake.on_request = None
    assert fake.users[oid].props["employeeId"] == "OLD"
    assert pending(store) == [scim_id]
    sync(wb_settings, store, run_options)
    assert fake.users[oid].props["employeeId"] == "NEW"
    assert pending(store) == []


def test_no_loop_across_three_delta_rounds(
    fake: FakeGraph, any_store: Store, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """Round 1 writes the app's value; round 2 brings it back through delta sync into the
    Graph extension, which queues nothing; meanwhile the app wrote a newer value, which the
    returning old one does not overwrite; round 3 writes that and nothing else."""
    oid = fake.put_user(userPrincipalName="loop@contoso.com", employeeId="HR-0")
    svc = service(any_store, wb_settings)
    scim_id = entra_create(svc, "loop@contoso.com", oid)
    app_write(svc, scim_id, badgeId="B-1")

    sync(wb_settings, any_store, run_options)  # round 1: initial delta, then the write-back
    assert [p["body"]["employeeId"] for p in patches(fake)] == ["B-1"]
    app_write(svc, scim_id, badgeId="B-2")

    sync(wb_settings, any_store, run_options)  # round 2: delta brings B-1 back
    assert graph_ext(any_store, scim_id)["employeeId"] in ("B-1", "B-2")
    assert app_values(any_store, scim_id)["badgeId"] == "B-2"
    assert [p["body"]["employeeId"] for p in patches(fake)] == ["B-1", "B-2"]

    for _ in range(2):  # rounds 3 and 4: B-2 comes back; nothing is written again
        report = sync(wb_settings, any_store, run_options)
        assert report.written_back == 0
    assert graph_ext(any_store, scim_id)["employeeId"] == "B-2"
    assert app_values(any_store, scim_id)["badgeId"] == "B-2"
    assert len(patches(fake)) == 2
    assert pending(any_store) == []


def test_entra_and_sync_writes_queue_nothing(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """Entra's own provisioning changes are never written back, and neither is an app write
    that leaves the mapped attributes as they were."""
    oid = fake.put_user(userPrincipalName="ent@contoso.com", jobTitle="Engineer")
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "ent@contoso.com", oid)
    sync(wb_settings, store, run_options)  # enrichment writes the Graph extension
    assert pending(store) == []
    app_write(svc, scim_id, badgeId="B-5")
    app_write(svc, scim_id, badgeId="B-5")
    assert pending(store) == [scim_id]


def test_missing_permission_keeps_every_entry(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """Every request of the batch 403: the identity lacks User.ReadWrite.All. The run says
    so and keeps the entries, so granting the permission resumes them."""
    oid = fake.put_user(userPrincipalName="p@contoso.com")
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "p@contoso.com", oid)
    app_write(svc, scim_id, badgeId="B-4")
    fake.fail(Fault(403, "Authorization_RequestDenied", match=lambda m, p: m == "PATCH"))
    report = sync(wb_settings, store, run_options)
    assert report.error_kind == "forbidden" and "User.ReadWrite.All" in (report.error or "")
    assert pending(store) == [scim_id]


def test_batch_envelope_is_the_documented_json(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """Relative URLs, unique ids, Content-Type with each body (Learn, "JSON batching"); the
    fake answers in reverse order, so matching is by id."""
    svc = service(store, wb_settings)
    for n in range(2):
        oid = fake.put_user(userPrincipalName=f"e{n}@contoso.com")
        app_write(svc, entra_create(svc, f"e{n}@contoso.com", oid), badgeId=f"B-{n}")
    sync(wb_settings, store, run_options)
    (batch,) = patch_batches(fake)
    assert all(r["url"].startswith("/users/") for r in batch)
    assert len({r["id"] for r in batch}) == 2
    assert all(r["headers"] == {"Content-Type": "application/json"} for r in batch)
    assert json.dumps(batch)  # JSON all the way


def test_whole_batch_throttled_is_retried(
    fake: FakeGraph,
    store: MemoryStore,
    wb_settings: Settings,
    run_options: SyncOptions,
    sleeps: Any,
) -> None:
    """Graph may also throttle the ``POST /$batch`` itself (429 with Retry-After on the
    envelope): the whole batch is sent again after the wait."""
    oid = fake.put_user(userPrincipalName="env@contoso.com")
    svc = service(store, wb_settings)
    app_write(svc, entra_create(svc, "env@contoso.com", oid), badgeId="B-8")
    sync(wb_settings, store, run_options)  # the newcomer's batch out of the way
    app_write(svc, svc.store.lookup("User", "externalId", oid)[0], badgeId="B-9")
    fake.fail(Fault(429, "TooManyRequests", retry_after=5, match=lambda m, p: p.endswith("$batch")))
    report = sync(wb_settings, store, run_options)
    assert report.written_back == 1, report.summary()
    assert 5 in sleeps.waits
    assert fake.users[oid].props["employeeId"] == "B-9"


def test_user_without_join_key_is_refused_on_the_user(
    fake: FakeGraph, store: MemoryStore, wb_settings: Settings, run_options: SyncOptions
) -> None:
    """No externalId (GRAPH_JOIN=externalId) and not enriched yet: nothing names the Entra
    user, so nothing is sent; the user says why and the row goes."""
    svc = service(store, wb_settings)
    scim_id = entra_create(svc, "nokey@contoso.com", None)
    app_write(svc, scim_id, badgeId="B-0")
    report = sync(wb_settings, store, run_options)
    assert report.writeback_refused == 1 and patches(fake) == []
    assert "no externalId" in graph_ext(store, scim_id)["writebackError"]
    assert pending(store) == []
