"""The event retention timer through the local host: ``events_retention`` of ``function_app``
fired by the host's admin endpoint, over Azurite (scim_core/events/retention.py).

Old events are made with the outbox's own write (``outbox_put``) under keys of a past time: the
key is the commit time an event carries (store/protocol.event_key), which is what the retention
compares.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import function_app
from devhost.server import LocalHost
from scim_core.events.record import EVENTS
from scim_core.events.retention import STATE
from scim_core.store import Outbox
from scim_core.store.protocol import stamp
from tests.e2e.events_support import USER, EventsApp, all_pending, drain, events_app, fire
from tests.scimclient import Client, unique


@pytest.fixture(scope="module")
def app(host: tuple[LocalHost, str]) -> EventsApp:
    return events_app(host[1])


@pytest.fixture
def served(app: EventsApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsApp]:
    monkeypatch.setattr(function_app, "_router", app.router)
    drain(app.feed)
    yield app
    drain(app.feed)


def aged(app: EventsApp, rtype: str, days: float, body: dict[str, object]) -> str:
    """An event row written ``days`` ago; its ``jti``."""
    key = f"{stamp(datetime.now(UTC) - timedelta(days=days))}|{secrets.token_hex(6)}"
    app.feed.store.outbox_put(rtype, [Outbox(EVENTS, key, body)])
    return rtype[0] + key


@pytest.mark.parametrize(
    ("retention", "gone", "kept"),
    [("7", [10.0, 7.01], [6.9, 1.0]), ("0.5", [10.0, 7.01, 6.9, 1.0], [])],
    ids=["seven-days", "half-a-day"],
)
def test_the_timer_removes_only_events_older_than_the_retention(
    host: tuple[LocalHost, str],
    served: EventsApp,
    scim: Client,
    monkeypatch: pytest.MonkeyPatch,
    retention: str,
    gone: list[float],
    kept: list[float],
) -> None:
    local, _ = host
    monkeypatch.setenv("SCIM_EVENTS_RETENTION_DAYS", retention)
    user = scim.post("/Users", {"schemas": [USER], "userName": unique("ret")})
    assert user.status_code == 201, user.text
    [fresh] = all_pending(served.feed)
    body = {"type": "User", "id": user.json()["id"], "events": {}, "origin": "provisioning"}
    old = [aged(served, rtype, days, body) for days in gone for rtype in ("User", "Group")]
    young = [aged(served, "Group", days, body) for days in kept]
    fire(local, "events_retention")
    left = all_pending(served.feed)
    assert left == sorted([*young, fresh], key=lambda j: (j[1:], j[0]))
    assert not set(old) & set(left)
    found = served.feed.store.get_state(STATE)
    assert found is not None and found[0]["removed"] == len(old)
    assert found[0]["days"] == float(retention)


def test_the_timer_does_nothing_when_events_are_off(
    host: tuple[LocalHost, str], app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's own handler has events off: the retention leaves the outbox alone."""
    local, _ = host
    drain(app.feed)
    jti = aged(app, "User", 30, {"type": "User", "id": "x", "events": {}})
    fire(local, "events_retention")
    assert all_pending(app.feed) == [jti]
    drain(app.feed)
