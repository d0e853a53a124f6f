"""Bounded waits when storage misbehaves (issue: a frozen storage process, accepting
connections and never answering, held requests past 10 s). One storage call, retries included,
ends within ``storage_timeout`` with a 503 carrying Retry-After; when storage recovers, the
next call succeeds on the same store, without a restart."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from scim_core.errors import ServiceUnavailable
from scim_core.store.table import TableStore
from tests.store.test_contract import make_user

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1.0
#: Generous: the bound is LIMIT; without it a frozen storage held a request for 300 s per try.
CEILING = 4 * LIMIT


@pytest.fixture
def frozen_endpoint() -> Iterator[str]:
    """A storage endpoint that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/{ACCOUNT_NAME}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_storage_that_never_answers_is_503_within_the_bound(frozen_endpoint: str) -> None:
    conn = f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};TableEndpoint={frozen_endpoint};"
    store = TableStore.from_connection_string(conn, storage_timeout=LIMIT)  # default retries
    began = time.monotonic()
    with pytest.raises(ServiceUnavailable) as caught:
        store.get("User", "00000000-0000-4000-8000-000000000000")
    assert time.monotonic() - began < CEILING
    assert caught.value.headers().get("Retry-After")


def test_a_frozen_azurite_is_503_then_recovers(tmp_path: Path) -> None:
    """SIGSTOP freezes Azurite with its socket open (the probe's scenario); SIGCONT thaws it."""
    with Azurite(ROOT, tmp_path) as azurite:
        store = TableStore.from_connection_string(
            azurite.connection_string, storage_timeout=LIMIT, tables_on_demand=True
        )
        user_id = make_user(store, "before@x.com")
        pid = azurite._process.pid  # type: ignore[union-attr]
        os.killpg(pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                store.get("User", user_id)
            assert time.monotonic() - began < CEILING
        finally:
            os.killpg(pid, signal.SIGCONT)
        assert store.get("User", user_id).doc["userName"] == "before@x.com"
        assert store.lookup("User", "userName", "before@x.com") == [user_id]
        store.close()
