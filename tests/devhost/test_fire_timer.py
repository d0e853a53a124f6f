"""`python -m devhost --fire-timer graph_sync` (`make sync`) reports the run's outcome.

A Graph sync returns normally after recording an operator-fixable error in its status record
(graph_enrich/sync.py), so "the function ran" is no outcome: the command must print why a run
failed and exit non-zero. Real processes, real Azurite (the session's), the app's own timer;
Graph is the loopback fake (tests/graph/fake_graph.py) and the managed identity's token comes
from a loopback fake of the App Service / Functions identity endpoint (Microsoft Learn, "How to
use managed identities for App Service and Azure Functions", REST endpoint reference:
``GET $IDENTITY_ENDPOINT?resource=..&api-version=2019-08-01`` with the ``X-IDENTITY-HEADER``
header answers ``access_token``, ``expires_on``, ``resource``, ``token_type``), which is how
the app gets its Graph token in Azure too.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from urllib.parse import parse_qs, urlsplit

import pytest

from devhost.azurite import Azurite
from tests.graph.fake_graph import TOKEN, FakeGraph

ROOT = Path(__file__).resolve().parents[2]
IDENTITY_HEADER = "identity-header-" + uuid.uuid4().hex


@contextmanager
def identity_endpoint() -> Iterator[str]:
    """The Functions host's managed-identity endpoint, answering with the fake Graph's token."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            query = parse_qs(urlsplit(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER or not query.get(
                "resource"
            ):
                self.send_response(400)
                self.end_headers()
                return
            body = json.dumps(
                {
                    "access_token": TOKEN,
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": query["resource"][0],
                    "token_type": "Bearer",
                    "client_id": query.get("client_id", [""])[0],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/msi/token"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def app_env(azurite: Azurite, table_prefix: str, **settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "AZURE_", "IDENTITY_"))
    }
    return {
        **env,
        "TABLES_CONNECTION_STRING": azurite.connection_string,
        "SCIM_BEARER_TOKEN": "fire-timer-" + uuid.uuid4().hex,
        "SYNC_SCHEDULE": "0 0 0 1 1 *",
        **settings,
    }


def fire(
    state: Path, env: dict[str, str], timer: str = "graph_sync"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "--fire-timer", timer, "--state-dir", str(state)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def fake_graph() -> Iterator[FakeGraph]:
    with FakeGraph().serve() as graph:
        yield graph


@pytest.fixture
def managed_identity() -> Iterator[dict[str, str]]:
    with identity_endpoint() as url:
        yield {
            "IDENTITY_ENDPOINT": url,
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "AZURE_CLIENT_ID": str(uuid.uuid4()),
        }


def test_a_complete_run_exits_zero_with_its_figures(
    tmp_path: Path, azurite_http: Azurite, fake_graph: FakeGraph, managed_identity: dict[str, str]
) -> None:
    fake_graph.put_user(userPrincipalName="adele@contoso.com", accountEnabled=True)
    env = app_env(azurite_http, "ok", GRAPH_BASE_URL=fake_graph.base_url, **managed_identity)
    done = fire(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "graph_sync complete: round full, pages 1, changes 1" in done.stdout


@pytest.mark.parametrize(
    ("settings", "kind", "why"),
    [
        (
            {"GRAPH_CLIENT_ID": "half-configured"},
            "configuration",
            "GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET",
        ),
        (
            {
                "IDENTITY_ENDPOINT": f"http://127.0.0.1:{closed_port()}/msi/token",
                "IDENTITY_HEADER": IDENTITY_HEADER,
                "AZURE_CLIENT_ID": str(uuid.uuid4()),
            },
            "credentials",
            "no Graph token",
        ),
    ],
    ids=["half-configured-secret", "no-token"],
)
def test_a_run_without_a_graph_credential_says_why_and_exits_non_zero(
    tmp_path: Path,
    azurite_http: Azurite,
    fake_graph: FakeGraph,
    settings: dict[str, str],
    kind: str,
    why: str,
) -> None:
    env = app_env(azurite_http, "nocred", GRAPH_BASE_URL=fake_graph.base_url, **settings)
    done = fire(tmp_path, env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"graph_sync failed [{kind}]" in done.stderr and why in done.stderr, done.stderr[-1500:]
    assert "ran" not in done.stdout


def test_graph_unreachable_says_why_and_exits_non_zero(
    tmp_path: Path, azurite_http: Azurite, managed_identity: dict[str, str]
) -> None:
    """Nothing listens at GRAPH_BASE_URL: the run retries within its budget (2 + 4 + 8 s),
    then records the failure; the command reports it."""
    base = f"http://127.0.0.1:{closed_port()}/v1.0"
    env = app_env(azurite_http, "unreach", GRAPH_BASE_URL=base, **managed_identity)
    done = fire(tmp_path, env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "graph_sync failed [" in done.stderr and "ConnectError" in done.stderr


def test_the_outcome_is_reported_when_a_running_host_runs_the_timer(
    tmp_path: Path, azurite_http: Azurite, fake_graph: FakeGraph
) -> None:
    """`make sync` while `make run` serves: the running host runs the timer; the command reads
    the run's status record from the host's storage and exits non-zero on failure."""
    env = app_env(
        azurite_http, "running", GRAPH_BASE_URL=fake_graph.base_url, GRAPH_CLIENT_ID="half"
    )
    command = [sys.executable, "-m", "devhost", "--port", "0", "--state-dir", str(tmp_path)]
    host = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert host.stdout is not None
        ready, _, _ = select.select([host.stdout], [], [], 60)
        line = host.stdout.readline() if ready else ""
        assert line.startswith("Listening on "), line
        done = fire(tmp_path, {k: v for k, v in env.items() if k != "GRAPH_CLIENT_ID"})
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "graph_sync failed [configuration]" in done.stderr
    finally:
        host.terminate()
        host.communicate(timeout=30)  # also closes the pipe


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        ({}, 0, "graph_sync recorded no run: skipped (another run holds the lease)"),
        (
            {"lastRun": {"finished": "2026-01-01T09:00:00.000Z", "outcome": "failed"}},
            0,
            "graph_sync recorded no run: skipped (another run holds the lease)",
        ),
        (
            {
                "lastRun": {
                    "finished": "2026-01-01T10:00:01.000Z",
                    "outcome": "partial",
                    "error": "Graph throttled",
                    "error_kind": "throttled",
                },
                "consecutiveFailures": 3,
            },
            1,
            "graph_sync partial [throttled]: Graph throttled; 3 failed runs in a row",
        ),
        (
            {"lastRun": {"finished": "2026-01-01T10:00:01.000Z", "outcome": "partial", "pages": 9}},
            0,
            "graph_sync partial: pages 9",
        ),
    ],
    ids=["no-record", "older-record", "stopped-on-error", "budget-partial"],
)
def test_the_outcome_is_judged_from_this_runs_status_record(
    status: dict[str, object], code: int, message: str
) -> None:
    """Only a record written after the run started counts (a skipped run writes none); a
    partial run that stopped on an error is a failure to report, one that ran out of budget
    is not (it resumes next run)."""
    from datetime import UTC, datetime

    from devhost.outcome import graph_sync_outcome

    outcome = graph_sync_outcome(status, datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    assert (outcome.code, outcome.message) == (code, message)


def test_the_token_age_timer_reports_each_slots_age(tmp_path: Path, azurite_http: Azurite) -> None:
    """`python -m devhost --fire-timer token_age`: the app's own timer records its tokens'
    first-seen times in Azurite and the command prints each slot's age, never a token."""
    env = app_env(azurite_http, "age", SCIM_APP_TOKEN="app-" + uuid.uuid4().hex)
    done = fire(tmp_path, env, "token_age")
    assert done.returncode == 0, done.stderr[-1500:]
    assert "token_age: SCIM_BEARER_TOKEN 0 days, SCIM_APP_TOKEN 0 days" in done.stdout
    for token in (env["SCIM_BEARER_TOKEN"], env["SCIM_APP_TOKEN"]):
        assert token not in done.stdout + done.stderr
    assert "token age SCIM_BEARER_TOKEN: 0 days (first seen " in done.stderr  # the log line


@pytest.mark.parametrize(
    ("record", "code", "message"),
    [
        ({}, 1, "token_age recorded nothing: see the log"),
        ({"checked": "2026-01-01T09:59:00Z", "slots": {}}, 1, "token_age recorded nothing"),
        (
            {
                "checked": "2026-01-01T10:00:01Z",
                "slots": {
                    "SCIM_BEARER_TOKEN": {"fingerprint": "f1", "firstSeen": "2025-06-01T05:30:00Z"},
                    "SCIM_APP_TOKEN": {"fingerprint": "f2", "firstSeen": "2026-01-01T10:00:01Z"},
                },
            },
            0,
            "token_age: SCIM_BEARER_TOKEN 214 days, SCIM_APP_TOKEN 0 days",
        ),
        (
            {"checked": "2026-01-01T10:00:01Z", "slots": {}},
            0,
            "token_age: no static token configured",
        ),
    ],
    ids=["no-record", "older-record", "ages", "no-token"],
)
def test_the_token_age_outcome_is_judged_from_this_runs_record(
    record: dict[str, object], code: int, message: str
) -> None:
    """Only a record this run wrote counts; it shows slot names and days, no fingerprint."""
    from datetime import UTC, datetime

    from devhost.outcome import token_age_outcome

    outcome = token_age_outcome(record, datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    assert outcome.code == code and outcome.message.startswith(message)
    assert "f1" not in outcome.message


def test_the_event_retention_timer_reports_what_it_removed(
    tmp_path: Path, azurite_http: Azurite
) -> None:
    """`python -m devhost --fire-timer events_retention` with events on: the app's own timer
    runs and the command prints its record (docs/events.md, "Retention")."""
    env = app_env(azurite_http, "ret", SCIM_EVENTS="notice", SCIM_EVENTS_UNSIGNED="true")
    done = fire(tmp_path, env, "events_retention")
    assert done.returncode == 0, done.stderr[-1500:]
    assert "events_retention: removed " in done.stdout
    assert "events older than 7.0 days" in done.stdout


@pytest.mark.parametrize(
    ("record", "code", "message"),
    [
        ({}, 0, "events_push recorded no run"),
        (
            {"lastRun": {"finished": "2026-01-01T09:59:00Z", "outcome": "delivered"}},
            0,
            "events_push recorded no run",
        ),
        (
            {"lastRun": {"finished": "2026-01-01T10:00:01Z", "outcome": "delivered", "pushed": 7}},
            0,
            "events_push delivered: pushed 7, refused 0",
        ),
        (
            {
                "lastRun": {
                    "finished": "2026-01-01T10:00:01Z",
                    "outcome": "failed",
                    "error": "HTTP 503",
                    "pushed": 0,
                },
                "failures": 2,
                "retryAt": "2026-01-01T10:01:01Z",
            },
            1,
            "events_push failed: HTTP 503; pushed 0, refused 0; 2 failed runs in a row",
        ),
    ],
    ids=["no-record", "older-record", "delivered", "failed"],
)
def test_the_event_push_outcome_is_judged_from_this_runs_record(
    record: dict[str, object], code: int, message: str
) -> None:
    from datetime import UTC, datetime

    from devhost.outcome import events_push_outcome

    outcome = events_push_outcome(record, datetime(2026, 1, 1, 10, 0, tzinfo=UTC))
    assert outcome.code == code and outcome.message.startswith(message)
