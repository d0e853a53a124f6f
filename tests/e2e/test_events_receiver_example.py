"""The receiver docs/events.md tells app teams to copy (examples/events_receiver.py), run as a
real process against the local host: it receives every event of a scripted change sequence
once, verifies each signature with ``GET /Events/keys``, and its checkpoint makes a redelivered
SET (a crash before the ack) harmless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import function_app
from devhost.server import LocalHost
from tests.e2e.events_support import GROUP, PATCH_OP, USER, EventsApp, all_pending, drain
from tests.e2e.events_support import events_app as make_events_app
from tests.scimclient import Client, unique

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://scim.contoso.test/scim/v2"
AUDIENCE = "https://app.contoso.test/"


@pytest.fixture(scope="module")
def app(host: tuple[LocalHost, str]) -> EventsApp:
    return make_events_app(host[1])


@pytest.fixture
def served(app: EventsApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsApp]:
    monkeypatch.setattr(function_app, "_router", app.router)
    drain(app.feed)
    yield app
    drain(app.feed)


def run_receiver(
    local: LocalHost, app: EventsApp, checkpoint: Path, code: int = 0, **extra: str
) -> list[dict[str, object]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCIM_")},
        "SCIM_BASE_URL": local.base_url + "/scim/v2",
        "SCIM_EVENTS_TOKEN": app.app_token,
        "SCIM_EVENTS_ISSUER": ISSUER,
        "SCIM_EVENTS_AUDIENCE": AUDIENCE,
        "EVENTS_CHECKPOINT": str(checkpoint),
        **extra,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "events_receiver.py"), "--until-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr[-2000:]
    assert app.app_token not in done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_example_receiver_gets_every_event_once(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, tmp_path: Path
) -> None:
    local, _ = host
    uid = scim.post("/Users", {"schemas": [USER], "userName": unique("ex")}).json()["id"]
    off = {"op": "replace", "path": "active", "value": False}
    patch = scim.patch(f"/Users/{uid}", {"schemas": [PATCH_OP], "Operations": [off]})
    assert patch.status_code in (200, 204), patch.text
    group = scim.post(
        "/Groups", {"schemas": [GROUP], "displayName": unique("g"), "members": [{"value": uid}]}
    )
    assert group.status_code == 201, group.text
    bulk = scim.post(
        "/Bulk",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": f"b{n}",
                    "data": {"schemas": [USER], "userName": unique("bulk")},
                }
                for n in range(3)
            ],
        },
    )
    assert bulk.status_code == 200, bulk.text
    assert scim.delete(f"/Users/{uid}").status_code == 204
    expected = all_pending(served.feed)
    assert len(expected) == 7

    checkpoint = tmp_path / "events.checkpoint"
    got = run_receiver(local, served, checkpoint)
    assert [line["jti"] for line in got] == expected  # each once, in delivery order
    mine = [line["events"] for line in got if line["subject"] == f"/Users/{uid}"]
    assert mine == [["create:notice"], ["deactivate", "patch:notice"], ["delete"]]
    assert all_pending(served.feed) == []  # all acknowledged
    assert checkpoint.read_text().split() == expected

    # Nothing new: a second run applies nothing.
    assert run_receiver(local, served, checkpoint) == []


def test_a_set_redelivered_after_a_crash_is_acknowledged_not_applied_again(
    host: tuple[LocalHost, str], served: EventsApp, scim: Client, tmp_path: Path
) -> None:
    """The receiver applied and checkpointed a SET, then died before acknowledging it: the
    endpoint sends it again; the checkpoint skips it and the next poll acknowledges it."""
    local, _ = host
    for _ in range(3):
        assert scim.post("/Users", {"schemas": [USER], "userName": unique("c")}).status_code == 201
    first, *rest = all_pending(served.feed)
    checkpoint = tmp_path / "events.checkpoint"
    checkpoint.write_text(first + "\n")
    got = run_receiver(local, served, checkpoint)
    assert [line["jti"] for line in got] == rest
    assert all_pending(served.feed) == []


@pytest.fixture(scope="module")
def unsigned_app(host: tuple[LocalHost, str]) -> EventsApp:
    return make_events_app(host[1], SCIM_EVENTS_SIGNING_KEY="", SCIM_EVENTS_UNSIGNED="true")


def test_unsigned_sets_stop_the_receiver_unless_allowed_and_none_is_dropped(
    host: tuple[LocalHost, str],
    unsigned_app: EventsApp,
    scim: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator running SCIM_EVENTS_UNSIGNED=true: a receiver not told so stops (exit 2)
    rather than reporting every SET in setErrs (which would drop them all); told so, it takes
    them."""
    local, _ = host
    monkeypatch.setattr(function_app, "_router", unsigned_app.router)
    drain(unsigned_app.feed)
    for _ in range(2):
        assert scim.post("/Users", {"schemas": [USER], "userName": unique("u")}).status_code == 201
    expected = all_pending(unsigned_app.feed)
    checkpoint = tmp_path / "events.checkpoint"
    assert run_receiver(local, unsigned_app, checkpoint, code=2) == []
    assert all_pending(unsigned_app.feed) == expected
    got = run_receiver(local, unsigned_app, checkpoint, EVENTS_ALLOW_UNSIGNED="true")
    assert [line["jti"] for line in got] == expected
    assert all_pending(unsigned_app.feed) == []
