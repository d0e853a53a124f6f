"""Stopping the local host loses nothing: requests in progress finish, and every write that was
answered 201 is still there after a restart (issue 10, section 5, local durability)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost.server import HOST, LocalHost
from tests.devhost import sample_app

SAMPLE = "tests.devhost.sample_app"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[LocalHost]:
    (tmp_path / "host.json").write_text(
        '{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}', encoding="utf-8"
    )
    running = LocalHost(SAMPLE, app_dir=tmp_path).start()
    try:
        yield running
    finally:
        sample_app.SLOW_RELEASE.set()
        running.stop()


def test_stop_lets_a_request_in_progress_finish(host: LocalHost) -> None:
    """Graceful order: no new requests, then wait for those in progress, then release the app."""
    answers: list[requests.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(requests.get(f"{host.base_url}/slow", timeout=30))
    )
    request.start()
    assert sample_app.SLOW_STARTED.wait(timeout=10)
    stopper = threading.Thread(target=host.stop)
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # still waiting for /slow
    with pytest.raises(requests.ConnectionError):  # the listening socket is closed...
        requests.get(f"{host.base_url}/plain", timeout=5)
    sample_app.SLOW_RELEASE.set()
    request.join(timeout=10)
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert [(a.status_code, a.text) for a in answers] == [(200, "released=True")]
    assert answers[0].headers["Connection"] == "close"  # ...and the answer says so


def test_stop_closes_idle_keep_alive_connections_at_once(host: LocalHost) -> None:
    """An idle keep-alive connection neither delays the stop nor takes a request after it."""
    with socket.create_connection((HOST, host.port), timeout=10) as idle:
        idle.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith("héllo".encode()):
            answer += idle.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        host.stop()
        assert time.monotonic() - started < 2
        assert idle.recv(65536) == b""  # closed by the host, not left for a late request


def test_stop_gives_up_on_a_request_that_does_not_finish(host: LocalHost) -> None:
    """A stuck function cannot keep the host (and Azurite's saving) waiting forever."""
    threading.Thread(
        target=lambda: requests.get(f"{host.base_url}/slow", timeout=30), daemon=True
    ).start()
    assert sample_app.SLOW_STARTED.wait(timeout=10)
    started = time.monotonic()
    host.stop(drain_timeout=0.5)
    assert time.monotonic() - started < 5


# --- `python -m devhost` over Azurite --------------------------------------------------------


def _start(state: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "SCIM_BEARER_TOKEN": token}
    env.pop("TABLES_CONNECTION_STRING", None)  # this program starts its own Azurite
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", "0", "--state-dir", str(state)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 90)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("Listening on "):
        process.kill()
        pytest.fail(f"devhost did not start: {line!r} {process.communicate()}")
    return process, line.removeprefix("Listening on ").strip()


def _stop(process: subprocess.Popen[str], signum: int) -> None:
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]


def _user_names(base_url: str, token: str) -> set[str]:
    names: set[str] = set()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    start = 1
    while True:
        page = session.get(
            f"{base_url}/scim/v2/Users",
            params={"startIndex": str(start), "count": "100", "attributes": "userName"},
            timeout=30,
        ).json()
        names |= {resource["userName"] for resource in page["Resources"]}
        start += page["itemsPerPage"]
        if not page["Resources"] or start > page["totalResults"]:
            return names


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_every_acknowledged_create_survives_a_stop_signal(tmp_path: Path, signum: int) -> None:
    """Creates run from 4 clients at once; the signal arrives right after the 60th 201, while
    others are in progress. After a restart on the same data, every user answered 201 is there.

    Azurite keeps writes in memory and saves every few seconds, so this holds only because the
    host finishes its requests and then stops Azurite with SIGINT and waits for it to save."""
    token = "durability-" + uuid.uuid4().hex
    process, base_url = _start(tmp_path, token)
    created: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def client() -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        while True:
            name = f"u-{uuid.uuid4().hex}@example.com"
            body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}
            try:
                response = session.post(
                    f"{base_url}/scim/v2/Users", json=body, headers=headers, timeout=30
                )
            except requests.ConnectionError:
                return  # the host has stopped taking requests
            if response.status_code != 201:
                assert response.status_code == 503, response.text  # stopping: refused cleanly
                return
            with lock:
                created.append(name)
                if len(created) >= 60:
                    enough.set()

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        assert enough.wait(timeout=120)
    finally:
        _stop(process, signum)
        for thread in clients:
            thread.join(timeout=30)
    assert len(created) >= 60

    process, base_url = _start(tmp_path, token)
    try:
        assert set(created) <= _user_names(base_url, token)
    finally:
        _stop(process, signal.SIGTERM)


def _processes_using(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and str(path).encode() in command:
            found.append(int(entry.name))
    return found


def test_a_signal_during_start_up_stops_azurite_too(tmp_path: Path) -> None:
    """Azurite runs in its own session (so a terminal's Ctrl-C reaches it only through us): a
    SIGTERM while it is starting must not leave it running, holding the port and the data."""
    env = {**os.environ, "SCIM_BEARER_TOKEN": "t"}
    env.pop("TABLES_CONNECTION_STRING", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", "0", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    launched = tmp_path / "azurite" / "azurite-table.out"
    deadline = time.monotonic() + 60
    while not launched.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert launched.exists(), process.communicate(timeout=30)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Listening on" not in out
    assert _processes_using(tmp_path / "azurite") == []
