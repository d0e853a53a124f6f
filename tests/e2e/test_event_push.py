"""RFC 8935 push through the local host: the ``events_push`` timer of ``function_app``, fired
by the host's admin endpoint, over Azurite, to a loopback receiver (scim_core/events/push.py).

The host serves the request handler built from app settings with events on (swapped into
``function_app._router``, which the triggers read on every call); the push settings are app
settings in the host's environment (``SCIM_EVENTS_PUSH_*``), read by the timer each run. "Time
passes" for the back-off by rewriting the state record's ``retryAt`` into the past, which is
what the clock would do.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests

import function_app
from devhost.server import LocalHost
from scim_core.events.push import STATE, backoff_seconds
from scim_core.store.protocol import stamp
from tests.e2e.events_support import (
    GROUP,
    PATCH_OP,
    PROV,
    USER,
    EventsApp,
    PushReceiver,
    all_pending,
    always,
    drain,
    events_app,
    fire,
    push_receiver,
)
from tests.scimclient import Client, unique

PUSH_TOKEN = "push-" + "x" * 24


@pytest.fixture(scope="module")
def app(host: tuple[LocalHost, str]) -> EventsApp:
    return events_app(host[1])


@pytest.fixture
def served(
    host: tuple[LocalHost, str], app: EventsApp, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EventsApp]:
    """The host answers with the events handler; the outbox and the push state start clean."""
    monkeypatch.setattr(function_app, "_router", app.router)
    monkeypatch.setenv("SCIM_EVENTS_PUSH_TOKEN", PUSH_TOKEN)
    drain(app.feed)
    reset_state(app, {})
    yield app
    drain(app.feed)


def reset_state(app: EventsApp, value: dict[str, Any]) -> None:
    store = app.feed.store
    found = store.get_state(STATE)
    store.put_state(STATE, value, found[1] if found else None)


def state(app: EventsApp) -> dict[str, Any]:
    found = app.feed.store.get_state(STATE)
    assert found is not None
    return found[0]


def time_passes(app: EventsApp) -> None:
    """The back-off is over: its ``retryAt`` is in the past."""
    value = state(app)
    value["retryAt"] = stamp(datetime.now(UTC) - timedelta(seconds=1))
    reset_state(app, value)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def changes(scim: Client) -> dict[str, str]:
    """A scripted sequence of every kind of change: a user created, renamed, deactivated,
    added to a group, removed from it, deleted; the group deleted."""
    name = unique("push") + "@contoso.com"
    user = scim.post("/Users", {"schemas": [USER], "userName": name, "active": True})
    assert user.status_code == 201, user.text
    uid = user.json()["id"]
    for ops in (
        [{"op": "replace", "path": "displayName", "value": "Adele V"}],
        [{"op": "replace", "path": "active", "value": False}],
    ):
        r = scim.patch(f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": ops})
        assert r.status_code in (200, 204), r.text
    group = scim.post("/Groups", {"schemas": [GROUP], "displayName": unique("g")})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    for op in ("add", "remove"):
        body = {"op": op, "path": "members", "value": [{"value": uid}]}
        if op == "remove":
            body = {"op": op, "path": f'members[value eq "{uid}"]'}
        r = scim.patch(f"/Groups/{gid}", {"schemas": [PATCH_OP], "Operations": [body]})
        assert r.status_code in (200, 204), r.text
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    return {"user": uid, "group": gid}


def test_a_failing_receiver_loses_nothing_and_gets_every_set_once_when_it_recovers(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, _ = host
    ids = changes(scim)
    expected = all_pending(served.feed)
    assert len(expected) == 8  # one event per committed change

    # 1. The receiver answers 500: the run stops at the first SET and backs off.
    with push_receiver(PushReceiver(answer=always(500))) as failing:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", failing.url)
        fire(local, "events_push")
        assert len(failing.got) == 1
        first = state(served)
        assert first["failures"] == 1 and first["lastError"] == "HTTP 500"
        assert all_pending(served.feed) == expected  # nothing lost
        # Within the back-off a run sends nothing.
        fire(local, "events_push")
        assert len(failing.got) == 1
        assert state(served)["lastRun"] == first["lastRun"]

    # 2. The receiver is down (connection refused): the back-off doubles.
    monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", f"http://127.0.0.1:{closed_port()}/events")
    time_passes(served)
    before = datetime.now(UTC)
    fire(local, "events_push")
    down = state(served)
    assert down["failures"] == 2 and "ConnectionRefusedError" in down["lastError"]
    retry_at = datetime.fromisoformat(down["retryAt"].replace("Z", "+00:00"))
    assert retry_at >= before + timedelta(seconds=backoff_seconds(2)) - timedelta(seconds=1)
    assert down["failingSince"] == first["failingSince"]
    assert all_pending(served.feed) == expected

    # 3. It recovers: every SET arrives once, in commit order, and is removed (acked).
    with push_receiver() as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        time_passes(served)
        fire(local, "events_push")
        assert receiver.accepted() == expected
        assert all_pending(served.feed) == []
        recovered = state(served)
        assert recovered["failures"] == 0 and recovered["failingSince"] is None
        assert recovered["lastRun"]["outcome"] == "delivered"
        assert recovered["lastRun"]["pushed"] == 8
        fire(local, "events_push")  # nothing left: nothing sent again
        assert len(receiver.got) == 8

    # On the wire (RFC 8935 §2.1): one SET per POST, its media type, the bearer token.
    for got in receiver.got:
        assert got.headers["Content-Type"] == "application/secevent+jwt"
        assert got.headers["Accept"] == "application/json"
        assert got.headers["Authorization"] == f"Bearer {PUSH_TOKEN}"
        assert got.body.count(".") == 2
    # Signed with the key GET /Events/keys publishes.
    keys = scim.get("/Events/keys", token=served.app_token)
    assert keys.status_code == 200, keys.text
    jwks = jwt.PyJWKSet.from_dict(keys.json())
    header = jwt.get_unverified_header(receiver.got[0].body)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256"
    claims = [
        jwt.decode(
            got.body,
            jwks[header["kid"]].key,
            algorithms=["ES256"],
            audience="https://app.contoso.test/",
            issuer="https://scim.contoso.test/scim/v2",
        )
        for got in receiver.got
    ]
    # Per resource, in commit order: the user's create first, its delete last.
    user_events = [c["events"] for c in claims if c["sub_id"]["uri"] == f"/Users/{ids['user']}"]
    assert set(user_events[0]) == {PROV + "create:notice"}
    assert set(user_events[2]) == {PROV + "patch:notice", PROV + "deactivate"}
    assert set(user_events[-1]) == {PROV + "delete"}
    group_events = [c["events"] for c in claims if c["sub_id"]["uri"] == f"/Groups/{ids['group']}"]
    assert [sorted(e) for e in group_events] == [
        [PROV + "create:notice"],
        [PROV + "patch:notice"],
        [PROV + "patch:notice"],
        [PROV + "delete"],
    ]


def test_a_set_the_receiver_refuses_is_removed_and_the_others_delivered(
    host: tuple[LocalHost, str],
    served: EventsApp,
    scim: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """400 with ``err: invalid_request`` (RFC 8935 §2.3, §2.4): that SET is dropped for good,
    as a poll's ``setErrs``, and logged; the run goes on."""
    local, _ = host
    for _ in range(3):
        name = unique("refused") + "@contoso.com"
        assert scim.post("/Users", {"schemas": [USER], "userName": name}).status_code == 201
    expected = all_pending(served.feed)
    refused = expected[1]

    def answer(token: str) -> tuple[int, Any, dict[str, str]]:
        if jwt.decode(token, options={"verify_signature": False})["jti"] == refused:
            return 400, {"err": "invalid_request", "description": "no such tenant"}, {}
        return 202, None, {}

    caplog.set_level(logging.WARNING, logger="scim_core.events")
    with push_receiver(PushReceiver(answer=answer)) as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        fire(local, "events_push")
    assert [r.claims["jti"] for r in receiver.got] == expected
    assert receiver.accepted() == [expected[0], expected[2]]
    assert all_pending(served.feed) == []
    last = state(served)
    assert (last["failures"], last["lastRun"]["pushed"], last["lastRun"]["refused"]) == (0, 2, 1)
    assert f"could not process SET {refused}: invalid_request (no such tenant)" in caplog.text
    assert PUSH_TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "wait"),
    [
        (400, {"err": "invalid_audience", "description": "not us"}, {}, "invalid_audience", 30),
        (400, {"err": "authentication_failed"}, {}, "authentication_failed", 30),
        (400, "<html>bad gateway</html>", {}, "HTTP 400", 30),
        (401, None, {}, "HTTP 401", 30),
        (429, None, {"Retry-After": "600"}, "HTTP 429", 600),
        (503, None, {}, "HTTP 503", 30),
        (302, None, {"Location": "https://elsewhere.test/"}, "HTTP 302", 30),
    ],
    ids=["invalid-audience", "auth-failed", "400-no-error-object", "401", "429", "503", "302"],
)
def test_an_answer_about_the_receiver_or_our_settings_keeps_every_set_and_backs_off(
    host: tuple[LocalHost, str],
    served: EventsApp,
    scim: Client,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    body: Any,
    headers: dict[str, str],
    error: str,
    wait: float,
) -> None:
    """Not the SET's fault, so no SET is removed: every SET would meet the same answer, and an
    operator can fix it (RFC 8935 §2.4's configuration errors; HTTP errors; a redirect)."""
    local, _ = host
    assert scim.post("/Users", {"schemas": [USER], "userName": unique("k")}).status_code == 201
    expected = all_pending(served.feed)
    with push_receiver(PushReceiver(answer=always(status, body, **headers))) as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        before = datetime.now(UTC)
        fire(local, "events_push")
    assert len(receiver.got) == 1
    assert all_pending(served.feed) == expected
    failed = state(served)
    assert failed["failures"] == 1 and error in failed["lastError"]
    retry_at = datetime.fromisoformat(failed["retryAt"].replace("Z", "+00:00"))
    assert (
        before + timedelta(seconds=wait - 1)
        <= retry_at
        <= datetime.now(UTC) + timedelta(seconds=wait + 1)
    )


def test_after_the_give_up_time_a_set_is_not_pushed_but_stays_pollable(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SCIM_EVENTS_PUSH_GIVE_UP_HOURS`` counts from the SET's commit: an older SET is left to
    poll; newer ones are pushed."""
    local, _ = host
    monkeypatch.setenv("SCIM_EVENTS_PUSH_GIVE_UP_HOURS", str(2 / 3600))  # two seconds
    assert scim.post("/Users", {"schemas": [USER], "userName": unique("old")}).status_code == 201
    [old] = all_pending(served.feed)
    with push_receiver(PushReceiver(answer=always(503))) as failing:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", failing.url)
        fire(local, "events_push")
        assert len(failing.got) == 1
    import time

    time.sleep(2.5)
    assert scim.post("/Users", {"schemas": [USER], "userName": unique("new")}).status_code == 201
    [_, new] = all_pending(served.feed)
    with push_receiver() as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        time_passes(served)
        fire(local, "events_push")
    assert receiver.accepted() == [new]
    assert state(served)["gaveUpFrom"] == old
    # The given-up SET is still there for a poll, and a poll's ack removes it.
    poll = requests.post(
        local.base_url + "/scim/v2/Events",
        json={"returnImmediately": True},
        headers={"Authorization": f"Bearer {served.app_token}"},
        timeout=30,
    )
    assert poll.status_code == 200, poll.text
    assert list(poll.json()["sets"]) == [old]
    ack = requests.post(
        local.base_url + "/scim/v2/Events",
        json={"ack": [old], "returnImmediately": True},
        headers={"Authorization": f"Bearer {served.app_token}"},
        timeout=30,
    )
    assert ack.json() == {"sets": {}, "moreAvailable": False}


def test_a_run_holding_the_lease_keeps_a_second_one_out(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs at once (two instances' timers): the conditional write of the lease lets one
    push; each SET arrives once. A lease still held by a record makes a run skip."""
    local, _ = host
    for _ in range(20):
        assert scim.post("/Users", {"schemas": [USER], "userName": unique("l")}).status_code == 201
    expected = all_pending(served.feed)
    with push_receiver(PushReceiver(delay=0.05)) as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        reset_state(served, {"lease": stamp(datetime.now(UTC) + timedelta(minutes=1))})
        fire(local, "events_push")
        assert receiver.got == [] and all_pending(served.feed) == expected
        reset_state(served, {})
        runs = [threading.Thread(target=fire, args=(local, "events_push")) for _ in range(2)]
        for run in runs:
            run.start()
        for run in runs:
            run.join()
    counts = Counter(receiver.accepted())
    assert sorted(counts) == sorted(expected) and set(counts.values()) == {1}
    assert all_pending(served.feed) == []


def test_a_run_stops_at_its_budget_and_the_next_goes_on(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, _ = host
    monkeypatch.setattr("scim_core.events.push.MAX_SETS_PER_RUN", 4)
    for _ in range(6):
        assert scim.post("/Users", {"schemas": [USER], "userName": unique("b")}).status_code == 201
    expected = all_pending(served.feed)
    with push_receiver() as receiver:
        monkeypatch.setenv("SCIM_EVENTS_PUSH_URL", receiver.url)
        fire(local, "events_push")
        assert receiver.accepted() == expected[:4]
        assert state(served)["lastRun"]["outcome"] == "budget"
        fire(local, "events_push")
    assert receiver.accepted() == expected
    assert all_pending(served.feed) == []


def test_push_is_off_without_a_url(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, _ = host
    monkeypatch.delenv("SCIM_EVENTS_PUSH_URL", raising=False)
    assert scim.post("/Users", {"schemas": [USER], "userName": unique("o")}).status_code == 201
    expected = all_pending(served.feed)
    fire(local, "events_push")
    assert all_pending(served.feed) == expected and state(served) == {}
