"""Delta paging, checkpoints, resume, replays, resync and overlapping runs (Microsoft Learn,
"user: delta" and "Use delta query to track changes in Microsoft Graph data")."""

from __future__ import annotations

import dataclasses
import threading
import time

from graph_enrich.state import CURSOR, STATUS, CursorStore
from scim_core.store.memory import MemoryStore
from tests.graph.conftest import enrichment, provision, sync
from tests.graph.fake_graph import FakeGraph, Fault, Request


def _tenant(fake: FakeGraph, store: MemoryStore, users: int, provisioned: int) -> list[str]:
    ids = []
    for n in range(users):
        object_id = fake.put_user(
            userPrincipalName=f"user{n}@contoso.com",
            jobTitle="Engineer",
            department="R&D",
            accountEnabled=True,
        )
        ids.append(object_id)
        if n < provisioned:
            provision(store, f"user{n}@contoso.com", object_id)
    return ids


def _delta_requests(fake: FakeGraph) -> list[Request]:
    return [r for r in fake.requests if r.path.startswith("/v1.0/users/delta")]


def test_initial_round_follows_next_links_to_the_delta_link(fake, settings, store, options):
    """nextLink pages are followed until the deltaLink; every provisioned user is enriched,
    the others are unmatched; the $select goes on the first request only."""
    ids = _tenant(fake, store, users=5, provisioned=3)
    report = sync(settings, store, options)
    assert (report.outcome, report.round, report.pages) == ("complete", "full", 3)
    assert (report.changes, report.enriched, report.unmatched) == (5, 3, 2)
    requests = _delta_requests(fake)
    assert "select" in requests[0].query and "skiptoken" in requests[1].query
    assert "$deltatoken=" in store.get_state(CURSOR)[0]["link"]
    scim_id = store.lookup("User", "externalId", ids[0])[0]
    ext = enrichment(store, scim_id)
    assert ext["objectId"] == ids[0] and ext["jobTitle"] == "Engineer"
    assert ext["department"] == "R&D" and ext["deprovisioned"] is False


def test_next_run_resumes_from_the_delta_link(fake, settings, store, options):
    """The stored deltaLink starts the next round: only the changes since come back."""
    ids = _tenant(fake, store, users=4, provisioned=4)
    sync(settings, store, options)
    fake.requests.clear()
    fake.put_user(ids[2], jobTitle="Architect")
    report = sync(settings, store, options)
    assert (report.round, report.changes, report.enriched) == ("delta", 1, 1)
    assert [
        r.query.keys() & {"deltatoken", "skiptoken", "select"} for r in _delta_requests(fake)
    ] == [{"deltatoken"}]
    assert enrichment(store, store.lookup("User", "externalId", ids[2])[0])["jobTitle"] == (
        "Architect"
    )


def test_a_run_out_of_budget_stops_at_a_checkpoint_and_the_next_resumes(
    fake, settings, store, options
):
    """The cursor moves after every page; a run that runs out of time stops cleanly ("partial")
    and the next run continues with the checkpointed nextLink, not from the start."""
    _tenant(fake, store, users=9, provisioned=9)  # 5 pages of 2
    clock = [0.0]
    fake.on_request = lambda request: clock.__setitem__(0, clock[0] + 40.0)
    timed = dataclasses.replace(options, clock=lambda: clock[0], budget_seconds=120.0)
    first = sync(settings, store, timed)
    assert first.outcome == "partial" and 0 < first.pages < 5
    link = store.get_state(CURSOR)[0]["link"]
    assert "$skiptoken=" in link
    fake.requests.clear()
    fake.on_request = None
    second = sync(settings, store, options)
    assert second.outcome == "complete" and first.pages + second.pages == 5
    assert _delta_requests(fake)[0].query["skiptoken"] == link.split("$skiptoken=")[1]
    assert first.enriched + second.enriched == 9


def test_a_change_to_the_same_value_writes_nothing(fake, settings, store, options):
    """Graph reports a user whose selected properties did not change (by default delta returns
    every selected property): the enrichment already says it, so no write happens."""
    ids = _tenant(fake, store, users=3, provisioned=3)
    sync(settings, store, options)
    scim_id = store.lookup("User", "externalId", ids[0])[0]
    etag = store.get("User", scim_id).etag
    fake.put_user(ids[0], jobTitle="Engineer")
    report = sync(settings, store, options)
    assert (report.changes, report.enriched, report.unchanged) == (1, 0, 1)
    assert store.get("User", scim_id).etag == etag


def test_a_replayed_delta_page_writes_nothing(fake, settings, store, options):
    """The same delta page applied twice: the second pass reads and stops, no write."""
    ids = _tenant(fake, store, users=2, provisioned=2)
    sync(settings, store, options)
    before = store.get_state(CURSOR)[0]["link"]
    fake.put_user(ids[0], officeLocation="B2")
    assert sync(settings, store, options).enriched == 1
    etag = store.get("User", store.lookup("User", "externalId", ids[0])[0]).etag
    cursor, tag = store.get_state(CURSOR)
    store.put_state(CURSOR, {**cursor, "link": before}, tag)  # replay the last round
    report = sync(settings, store, options)
    assert (report.changes, report.enriched, report.unchanged) == (1, 0, 1)
    assert store.get("User", store.lookup("User", "externalId", ids[0])[0]).etag == etag


def test_expired_token_410_starts_a_full_resync(fake, settings, store, options):
    """410 Gone + syncStateNotFound ("Synchronization reset", "Token duration"): the run
    starts a full round and completes it; properties cleared meanwhile go away."""
    ids = _tenant(fake, store, users=3, provisioned=3)
    sync(settings, store, options)
    fake.put_user(ids[0], jobTitle=None, department="Sales")
    fake.expire_tokens()
    report = sync(settings, store, options)
    assert (report.outcome, report.resyncs, report.round) == ("complete", 1, "full")
    ext = enrichment(store, store.lookup("User", "externalId", ids[0])[0])
    assert "jobTitle" not in ext and ext["department"] == "Sales"
    assert any(r.query.get("select") for r in _delta_requests(fake)[1:])  # a new initial query


def test_resync_required_in_the_middle_of_a_round(fake, settings, store, options):
    """resyncRequired on a nextLink mid-round: the round restarts from scratch, and every user
    carries the new round's stamp (the 2 of the first page are written twice)."""
    _tenant(fake, store, users=6, provisioned=6)
    fake.fail(
        Fault(
            410,
            "resyncRequired",
            location=True,
            match=lambda method, path: path.endswith("/users/delta"),
        )
    )
    report = sync(settings, store, options)
    assert (report.outcome, report.resyncs, report.enriched) == ("complete", 1, 2 + 6)
    stamps = {enrichment(store, s.id)["fullSyncDateTime"] for s in store.scan("User")}
    assert len(stamps) == 1


def test_overlapping_runs_cannot_both_advance_the_cursor(fake, settings, store, options):
    """Two runs at once (timer + notification, or two instances): the cursor's lease, taken
    with an ETag-conditional write, lets exactly one of them run; the other is "skipped"."""
    _tenant(fake, store, users=6, provisioned=6)
    fake.on_request = lambda request: time.sleep(0.1)
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(sync(settings, store, options)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.outcome for r in reports) == ["complete", "skipped"]
    assert store.get_state(CURSOR)[0]["owner"] is None  # released
    assert store.get_state(STATUS)[0]["lastRun"]["outcome"] == "complete"


def test_a_run_whose_lease_was_taken_over_does_not_advance_the_cursor(
    fake, settings, store, options
):
    """If another run takes over (our lease expired, e.g. a stalled host), our next checkpoint
    fails its ETag condition and the run stops without moving the cursor."""
    _tenant(fake, store, users=6, provisioned=6)
    cursors = CursorStore(store)

    def steal(request: Request) -> None:
        if "skiptoken" in request.query and not stolen:
            found, etag = store.get_state(CURSOR)
            stolen.append(store.put_state(CURSOR, {**found, "owner": "other", "link": None}, etag))

    stolen: list[str] = []
    fake.on_request = steal
    report = sync(settings, store, options)
    assert report.outcome == "partial" and report.error_kind == "lease-lost"
    assert store.get_state(CURSOR)[0]["owner"] == "other"
    assert cursors.acquire("third", 60) is None  # the other run's lease is respected


def test_an_expired_lease_is_taken_over(fake, settings, store, options):
    """A run that died holding the lease blocks the cursor only until its lease expires."""
    _tenant(fake, store, users=2, provisioned=2)
    past = "2000-01-01T00:00:00.000Z"
    store.put_state(CURSOR, {"link": None, "owner": "dead", "lease_until": past}, None)
    assert sync(settings, store, options).outcome == "complete"


def test_one_summary_line_and_status_record(fake, settings, store, options, caplog):
    """Each run logs one summary line and records its figures in the state table."""
    _tenant(fake, store, users=3, provisioned=2)
    with caplog.at_level("INFO", logger="graph_enrich"):
        report = sync(settings, store, options)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("graph sync")]
    assert len(lines) == 1 and "enriched=2" in lines[0] and "unmatched=1" in lines[0]
    status = store.get_state(STATUS)[0]
    assert status["lastRun"]["pages"] == report.pages == 2
    assert status["lastRun"]["enriched"] == 2 and status["consecutiveFailures"] == 0
    assert "duration" in status["lastRun"] and status["lastSuccess"]


def test_notifications_during_a_round_trigger_one_more(fake, settings, store, options):
    """A change notification recorded while a round ran: the run does another round at once
    instead of leaving the change to the next timer."""
    ids = _tenant(fake, store, users=2, provisioned=2)
    sync(settings, store, options)
    from graph_enrich.state import NOTIFICATIONS, iso, utc_now

    def notify_once(request: Request) -> None:
        if "deltatoken" in request.query and not done:
            done.append(True)
            fake.put_user(ids[1], jobTitle="Lead")
            store.put_state(NOTIFICATIONS, {"requested": iso(utc_now())}, None)

    done: list[bool] = []
    fake.on_request = notify_once
    report = sync(settings, store, options)
    assert report.enriched == 1
    assert enrichment(store, store.lookup("User", "externalId", ids[1])[0])["jobTitle"] == "Lead"
