"""Request counters of the status route (scim_core/activity.py): hourly buckets, the 24-hour
window, flushes from several processes into one record, and no storage access per request."""

from __future__ import annotations

import pytest

from scim_core.activity import BUCKET_SECONDS, RECORD, Activity
from scim_core.store.memory import MemoryStore

HOUR = BUCKET_SECONDS
START = 1_800_000_000.0  # a fixed instant, on an hour boundary or not: buckets are floor(t/h)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def get_state(self, name):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().get_state(name)

    def put_state(self, name, value, etag):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().put_state(name, value, etag)


def test_recording_touches_no_storage_until_a_flush_is_due() -> None:
    store, clock = CountingStore(), Clock()
    activity = Activity(store, clock=clock, flush_every=60)
    for status in (200, 200, 404, 401):
        activity.record(status)
    assert store.calls == 0
    snap = activity.snapshot()
    assert snap["last24h"] == {
        "requests": 4,
        "errors": 2,
        "byStatus": {"200": 2, "401": 1, "404": 1},
    }


def test_an_unauthenticated_request_is_not_the_last_entra_request() -> None:
    store, clock = CountingStore(), Clock()
    activity = Activity(store, clock=clock)
    activity.record(200)
    clock.now += 30
    activity.record(401)
    assert activity.snapshot()["lastRequest"] == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(
    ("age_hours", "counted"),
    [(0, 1), (23, 1), (25, 0), (30, 0)],
    ids=["now", "23h", "25h", "30h"],
)
def test_only_the_last_24_hours_count(age_hours: int, counted: int) -> None:
    store, clock = CountingStore(), Clock()
    activity = Activity(store, clock=clock)
    activity.record(500)
    activity.flush()
    clock.now += age_hours * HOUR
    assert activity.snapshot()["last24h"]["requests"] == counted


def test_flushes_of_several_processes_add_up_in_one_record() -> None:
    store, clock = CountingStore(), Clock()
    first, second = Activity(store, clock=clock), Activity(store, clock=clock)
    for _ in range(3):
        first.record(200)
    second.record(409)
    first.flush()
    second.flush()
    record = store.get_state(RECORD)
    assert record is not None
    (counts,) = record[0]["buckets"].values()
    assert counts == {"200": 3, "409": 1}
    assert first.snapshot()["last24h"]["requests"] == 4  # nothing pending any more


def test_a_flush_is_one_read_and_one_write() -> None:
    store, clock = CountingStore(), Clock()
    activity = Activity(store, clock=clock)
    activity.record(200)
    activity.flush()
    assert store.calls == 2
