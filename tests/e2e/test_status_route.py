"""``GET /status`` through the local host: authentication, the document's shape, the counts it
reports, and its storage cost (O(1) point reads whatever the instance's size; no storage write
added to SCIM requests: scim_core/activity.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import function_app
from scim_core.activity import RECORD
from scim_core.store.table import TableStore
from tests.e2e.test_entra_conversation import entra_user
from tests.scimclient import Client, unique


@pytest.fixture
def store(scim: Client) -> Iterator[TableStore]:
    scim.get("/ServiceProviderConfig")  # the app builds its store on first use
    built = function_app.store()
    assert isinstance(built, TableStore)
    built.create_tables()
    counters = function_app.activity()
    saved = counters.flush_every
    counters.flush_every = 10**9  # no background flush inside a measurement
    while counters._flushing:  # one that already started finishes first
        time.sleep(0.01)
    yield built
    counters.flush_every = saved


def status_url(scim: Client) -> str:
    return scim.base.removesuffix("/scim/v2") + "/status"


def get_status(scim: Client, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or scim.token}"}
    return requests.get(status_url(scim), headers=headers, timeout=30)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz"],
    ids=["none", "wrong-token", "basic"],
)
def test_status_needs_the_instances_credentials(scim: Client, authorization: str | None) -> None:
    """The route tells how the instance is used: only its own credentials may read it."""
    headers = {"Authorization": authorization} if authorization else {}
    resp = requests.get(status_url(scim), headers=headers, timeout=30)
    assert resp.status_code == 401
    assert resp.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "token" not in resp.text.lower() or "wrong-token" not in resp.text


def test_status_document_shape(scim: Client, store: TableStore) -> None:
    resp = get_status(scim)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Cache-Control"] == "no-store"
    doc = resp.json()
    assert doc["schemaVersion"] == 1 and doc["time"].endswith("Z")
    assert set(doc) == {"schemaVersion", "time", "scim", "graphSync", "users"}
    assert set(doc["scim"]) == {"lastRequest", "last24h"}
    assert set(doc["scim"]["last24h"]) == {"requests", "errors", "byStatus"}
    assert {"lastRun", "lastSuccess", "lagSeconds", "consecutiveFailures", "lastError"} <= set(
        doc["graphSync"]
    )
    assert set(doc["users"]) == {"count", "countedAt"}


def test_status_counts_requests_and_errors_by_status(scim: Client, store: TableStore) -> None:
    before = get_status(scim).json()["scim"]["last24h"]
    scim.get("/Users", params={"filter": f'userName eq "{unique("nobody")}"'})
    scim.get("/Users", params={"filter": f'externalId eq "{unique("nobody")}"'})
    scim.get("/Users/" + unique("missing"))
    requests.get(scim.base + "/Users", timeout=30)  # no token: 401, not Entra
    after = get_status(scim).json()["scim"]
    delta: dict[str, Any] = {
        k: after["last24h"]["byStatus"].get(k, 0) - before["byStatus"].get(k, 0)
        for k in ("200", "401", "404")
    }
    assert delta == {"200": 2, "401": 1, "404": 1}
    assert after["last24h"]["requests"] - before["requests"] == 4
    assert after["last24h"]["errors"] - before["errors"] == 2
    assert after["lastRequest"] is not None


def test_flushed_counts_are_stored_once_and_not_double_counted(
    scim: Client, store: TableStore
) -> None:
    """A flush merges this process's counts into the state record; the route then reads them
    from there instead of memory (the same totals)."""
    scim.get("/Users/" + unique("missing"))
    before = get_status(scim).json()["scim"]["last24h"]
    function_app.activity().flush()
    record = store.get_state(RECORD)
    assert record is not None and record[0]["buckets"]
    assert get_status(scim).json()["scim"]["last24h"] == before


def test_status_costs_a_constant_number_of_point_reads(scim: Client, store: TableStore) -> None:
    """Three point reads (request counters, Graph sync status, reconciliation record), the same
    with 30 more users: nothing is listed or scanned."""

    def cost() -> int:
        start = store.request_count
        assert get_status(scim).status_code == 200
        return store.request_count - start

    first = cost()
    for _ in range(30):
        assert (
            scim.post("/Users", entra_user(unique("st") + "@x.com", unique("e"))).status_code == 201
        )
    assert first == cost() <= 3


def test_counting_adds_no_storage_request_to_a_scim_request(
    scim: Client, store: TableStore
) -> None:
    """With no flush due, a SCIM GET costs what it costs without the counters: one point read."""
    created = scim.post("/Users", entra_user(unique("c") + "@x.com", unique("e"))).json()
    start = store.request_count
    assert scim.get(f"/Users/{created['id']}").status_code == 200
    assert store.request_count - start == 1
