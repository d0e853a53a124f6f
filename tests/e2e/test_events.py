"""Provisioning events end to end, through the local host serving function_app (issue 13): every
kind of committed change leaves exactly one SET and refused requests none; RFC 8936 poll with
ack, setErrs and redelivery; per-resource commit order under concurrent writers, with a poller
acknowledging while they write (the outbox-ordering hazard); the signature verifies against
``/Events/keys``; ServiceProviderConfig advertises the events."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests

import function_app
from devhost.server import LocalHost
from scim_core.events.feed import EventFeed
from scim_core.events.record import ACTIVATE, DEACTIVATE, DELETE, PREFIX
from scim_core.events.tokens import new_signing_key
from scim_core.router import Router
from scim_core.settings import Settings
from scim_core.store import Outbox
from scim_core.store.protocol import stamp
from scim_core.wiring import build_router
from tests.scimclient import Client, unique

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
APP = "urn:scimfunc:schemas:extension:app:1.0:User"
CREATE, PUT, PATCH = (f"{PREFIX}{k}:notice" for k in ("create", "put", "patch"))
ISSUER = "https://scim.example.test/scim/v2"


@dataclass
class Events:
    base: str
    entra: Client
    app: Client
    reader: Client
    router: Router

    def poll(self, **body: Any) -> requests.Response:
        return self.app.post("/Events", {"returnImmediately": True, **body})

    def drain(self) -> list[dict[str, Any]]:
        """Every pending SET, acknowledged, decoded (signature checked), oldest first."""
        keys = self.app.get("/Events/keys").json()
        out: list[dict[str, Any]] = []
        acks: list[str] = []
        while True:
            resp = self.poll(ack=acks, maxEvents=50)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            sets = body["sets"]
            out += [verify(token, keys) for token in sets.values()]
            acks = list(sets)
            if not sets and not body["moreAvailable"]:
                return out


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256"
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = jwt.PyJWK(key).key
    claims: dict[str, Any] = jwt.decode(
        token, public, algorithms=["ES256"], issuer=ISSUER, options={"verify_aud": False}
    )
    return claims


@pytest.fixture(scope="module")
def events(host: tuple[LocalHost, str]) -> Iterator[Events]:
    import os

    local, entra_token = host
    app_token, reader_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    pem = new_signing_key()
    env = {
        "TABLES_CONNECTION_STRING": os.environ["TABLES_CONNECTION_STRING"],
        "SCIM_BEARER_TOKEN": entra_token,
        "SCIM_APP_TOKEN": app_token,
        "SCIM_APP_SCOPES": "read events app:write",
        "SCIM_APP_EXTENSION_ATTRIBUTES": json.dumps([{"name": "tier", "type": "string"}]),
        "SCIM_EVENTS": "notice",
        "SCIM_EVENTS_SIGNING_KEY": pem,
        "SCIM_EVENTS_ISSUER": ISSUER,
        "SCIM_EVENTS_POLL_WAIT_SECONDS": "2",
    }
    router = build_router(Settings.from_env(env))
    # A second handler over the same tables whose app token lacks the events scope.
    reader_router = build_router(
        Settings.from_env({**env, "SCIM_APP_TOKEN": reader_token, "SCIM_APP_SCOPES": "read"})
    )
    base = local.base_url + "/scim/v2"
    old = function_app._router
    function_app._router = router
    try:
        setup = Events(
            base,
            Client(base, entra_token),
            Client(base, app_token),
            Client(base, reader_token),
            router,
        )
        setup.reader_router = reader_router  # type: ignore[attr-defined]
        setup.drain()  # events other modules' writes left (none: they run with events off)
        yield setup
    finally:
        function_app._router = old


@pytest.fixture
def ev(events: Events) -> Events:
    events.drain()
    return events


def _user(name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name or unique("ev") + "@contoso.com", **extra}


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def _of(sets: list[dict[str, Any]], rid: str) -> list[dict[str, Any]]:
    return [s for s in sets if s["sub_id"]["uri"].endswith("/" + rid)]


def test_every_kind_of_change_leaves_exactly_one_event(ev: Events) -> None:
    entra = ev.entra
    user = entra.post("/Users", _user(active=True, externalId="ext-1")).json()
    uid = user["id"]
    put = {**_user(user["userName"], active=True, displayName="P"), "externalId": "ext-1"}
    assert entra.put(f"/Users/{uid}", put).status_code == 200
    assert (
        entra.patch(f"/Users/{uid}", _patch({"op": "replace", "path": "title", "value": "T"}))
    ).status_code == 200
    off = _patch({"op": "replace", "path": "active", "value": False})
    assert entra.patch(f"/Users/{uid}", off).status_code == 200
    on = _patch({"op": "replace", "path": "active", "value": True})
    assert entra.patch(f"/Users/{uid}", on).status_code == 200
    tier = _patch({"op": "add", "path": f"{APP}:tier", "value": "gold"})
    assert ev.app.patch(f"/Users/{uid}", tier).status_code == 200
    group = entra.post("/Groups", {"schemas": [GROUP], "displayName": unique("g")}).json()
    gid = group["id"]
    add = _patch({"op": "add", "path": "members", "value": [{"value": uid}]})
    assert entra.patch(f"/Groups/{gid}", add).status_code == 200
    remove = _patch({"op": "remove", "path": f'members[value eq "{uid}"]'})
    assert entra.patch(f"/Groups/{gid}", remove).status_code == 200
    bulk = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "bulkId": "b1", "path": "/Users", "data": _user()},
            {
                "method": "PATCH",
                "path": f"/Groups/{gid}",
                "data": _patch({"op": "add", "path": "members", "value": [{"value": "bulkId:b1"}]}),
            },
        ],
    }
    bulk_resp = entra.post("/Bulk", bulk).json()
    bulk_uid = bulk_resp["Operations"][0]["location"].rsplit("/", 1)[-1]
    assert entra.delete(f"/Users/{uid}").status_code == 204
    assert entra.delete(f"/Groups/{gid}").status_code == 204

    sets = ev.drain()
    user_sets = _of(sets, uid)
    assert [list(s["events"]) for s in user_sets] == [
        [CREATE],
        [PUT],
        [PATCH],
        [PATCH, DEACTIVATE],
        [PATCH, ACTIVATE],
        [PATCH],
        [DELETE],
    ]
    assert user_sets[0]["events"][CREATE]["attributes"] == [
        "active",
        "externalId",
        "userName",
    ]
    assert user_sets[2]["events"][PATCH]["attributes"] == ["title"]
    assert user_sets[5]["events"][PATCH]["attributes"] == [f"{APP}:tier"]
    assert [s["scimfunc.origin"] for s in user_sets] == [
        "provisioning",
        "provisioning",
        "provisioning",
        "provisioning",
        "provisioning",
        "app",
        "provisioning",
    ]
    assert all(
        s["sub_id"] == {"format": "scim", "uri": f"/Users/{uid}", "externalId": "ext-1"}
        for s in user_sets[:-1]
    )
    group_sets = _of(sets, gid)
    assert [list(s["events"]) for s in group_sets] == [
        [CREATE],
        [PATCH],
        [PATCH],
        [PATCH],
        [DELETE],
    ]
    assert all(s["events"][PATCH]["attributes"] == ["members"] for s in group_sets[1:4]), group_sets
    bulk_sets = [s for s in sets if s["sub_id"]["uri"] in (f"/Users/{bulk_uid}", f"/Groups/{gid}")]
    bulk_txn = {s["txn"] for s in bulk_sets if s["sub_id"]["uri"] == f"/Users/{bulk_uid}"}
    assert len(_of(sets, bulk_uid)) == 1 and len(bulk_txn) == 1
    assert bulk_txn <= {s["txn"] for s in group_sets}  # the Bulk's two events share its txn
    assert len(sets) == len(user_sets) + len(group_sets) + 1
    assert len({s["jti"] for s in sets}) == len(sets)
    assert all(s["iss"] == ISSUER and isinstance(s["iat"], int) for s in sets)


def test_refused_requests_leave_no_event(ev: Events) -> None:
    entra = ev.entra
    user = entra.post("/Users", _user()).json()
    uid, version = user["id"], user["meta"]["version"]
    assert len(ev.drain()) == 1
    stale = {"If-Match": 'W/"stale"'}
    title = _patch({"op": "replace", "path": "title", "value": "x"})
    refused = [
        entra.post("/Users", _user(user["userName"])),  # 409 uniqueness
        entra.patch(f"/Users/{uid}", title, headers=stale),  # 412
        entra.delete(f"/Users/{uid}", headers=stale),  # 412
        entra.patch(f"/Users/{uid}", _patch({"op": "explode", "path": "title"})),  # 400
        entra.put(f"/Users/{uid}", {"schemas": [USER]}),  # 400: userName required
        entra.delete("/Users/no-such-user"),  # 404
        entra.patch(f"/Users/{uid}", _patch({"op": "replace", "path": "title"})),  # 400
        ev.app.post("/Users", _user()),  # 403: the app credential may not create
        ev.app.patch(f"/Users/{uid}", title),  # 403: outside the app's extension
        entra.patch(f"/Users/{uid}", _patch({"op": "remove", "path": "nickName"})),  # no change
    ]
    assert [r.status_code for r in refused] == [409, 412, 412, 400, 400, 404, 400, 403, 403, 200]
    assert entra.get(f"/Users/{uid}").json()["meta"]["version"] == version
    assert ev.drain() == []


def test_unacknowledged_sets_come_again_and_acknowledged_ones_never(ev: Events) -> None:
    ids = [ev.entra.post("/Users", _user()).json()["id"] for _ in range(5)]
    first = ev.poll(maxEvents=3).json()
    assert len(first["sets"]) == 3 and first["moreAvailable"] is True
    again = ev.poll(maxEvents=3).json()
    # Not acknowledged: the same SETs again, with the same claims (an ES256 signature is
    # randomised, so only the payload is byte for byte the same).
    assert {j: t.split(".")[1] for j, t in again["sets"].items()} == {
        j: t.split(".")[1] for j, t in first["sets"].items()
    }
    jtis = list(first["sets"])
    errs = {jtis[2]: {"err": "invalid_request", "description": "cannot map"}}
    after = ev.poll(ack=jtis[:2], setErrs=errs, maxEvents=10).json()
    assert set(after["sets"]).isdisjoint(jtis) and len(after["sets"]) == 2
    assert after["moreAvailable"] is False
    # maxEvents 0 acknowledges only; an unknown or repeated jti is ignored.
    only_ack = ev.poll(ack=[*after["sets"], jtis[0], "U-not-a-jti"], maxEvents=0).json()
    assert only_ack == {"sets": {}, "moreAvailable": False}
    assert ev.poll().json() == {"sets": {}, "moreAvailable": False}
    assert len(ids) == 5


def test_a_waiting_poll_returns_the_first_event_written_meanwhile(ev: Events) -> None:
    started = time.monotonic()
    assert ev.app.post("/Events", {"maxEvents": 5}).json()["sets"] == {}  # waited, empty
    waited = time.monotonic() - started
    assert waited >= 1.5

    def later() -> None:
        time.sleep(0.5)
        ev.entra.post("/Users", _user())

    thread = threading.Thread(target=later)
    thread.start()
    resp = ev.app.post("/Events", {"maxEvents": 5, "returnImmediately": False}).json()
    thread.join()
    assert len(resp["sets"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"maxEvents": -1},
        {"maxEvents": "10"},
        {"maxEvents": True},
        {"ack": "jti"},
        {"ack": [1]},
        {"setErrs": {"j": "bad"}},
        {"setErrs": {"j": {"description": "no err"}}},
        {"returnImmediately": "yes"},
    ],
    ids=lambda b: json.dumps(b)[:30],
)
def test_a_bad_poll_is_an_rfc_8936_error_and_settles_nothing(ev: Events, body: Any) -> None:
    ev.entra.post("/Users", _user())
    resp = ev.app.post("/Events", body)
    assert resp.status_code == 400
    assert resp.json()["err"] == "invalid_request" and resp.json()["description"]
    assert len(ev.drain()) == 1


def test_events_need_the_events_scope_and_entra_has_none(
    ev: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ev.entra.post("/Events", {}).status_code == 403
    assert ev.entra.get("/Events/keys").status_code == 403
    monkeypatch.setattr(function_app, "_router", ev.reader_router)  # type: ignore[attr-defined]
    assert ev.reader.post("/Events", {}).status_code == 403
    assert ev.reader.get("/Users?count=1").status_code == 200
    assert ev.app.get("/Events").status_code == 401  # the other handler's app token is unknown


def test_service_provider_config_advertises_the_events(ev: Events) -> None:
    config = ev.entra.get("/ServiceProviderConfig").json()
    assert config["securityEvents"]["asyncRequest"] == "none"
    assert set(config["securityEvents"]["eventUris"]) == {
        CREATE,
        PUT,
        PATCH,
        DELETE,
        ACTIVATE,
        DEACTIVATE,
    }
    assert ev.app.get("/Events").status_code == 405  # poll is a POST (RFC 8936 §2.4)


def test_per_resource_commit_order_with_concurrent_writers_and_a_poller(ev: Events) -> None:
    """Six writers each create a user, PATCH it four times and delete it; two more PATCH one
    shared user, racing on its ETag. Meanwhile a poller polls and acknowledges. Then: every
    committed change arrived exactly once, none after its acknowledgement, and per resource in
    commit order (create first, delete last, the shared user's versions in the order the
    writers saw them commit)."""
    shared = ev.entra.post("/Users", _user(title="0")).json()["id"]
    ev.drain()
    received: list[dict[str, Any]] = []
    stop = threading.Event()
    keys = ev.app.get("/Events/keys").json()
    shared_commits: list[str] = []
    lock = threading.Lock()

    def poller() -> None:
        acks: list[str] = []
        while not stop.is_set() or acks:
            body = ev.poll(ack=acks, maxEvents=7).json()
            received.extend(verify(t, keys) for t in body["sets"].values())
            acks = list(body["sets"])
            if not acks:
                time.sleep(0.05)

    def own(n: int) -> None:
        uid = ev.entra.post("/Users", _user()).json()["id"]
        for step in range(4):
            op = _patch({"op": "replace", "path": "title", "value": f"{n}-{step}"})
            assert ev.entra.patch(f"/Users/{uid}", op).status_code == 200
        assert ev.entra.delete(f"/Users/{uid}").status_code == 204

    def bump(n: int) -> None:
        for step in range(5):
            value = f"w{n}-{step}"
            resp = ev.entra.patch(
                f"/Users/{shared}", _patch({"op": "replace", "path": "title", "value": value})
            )
            assert resp.status_code == 200
            with lock:
                shared_commits.append(resp.json()["meta"]["version"])

    reader = threading.Thread(target=poller)
    reader.start()
    writers = [threading.Thread(target=own, args=(n,)) for n in range(6)]
    writers += [threading.Thread(target=bump, args=(n,)) for n in range(2)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join(timeout=60)
    received += ev.drain()
    jtis = [s["jti"] for s in received]
    assert len(jtis) == len(set(jtis)) == 6 * 6 + 10
    by_resource: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in received:
        by_resource[s["sub_id"]["uri"]].append(s)
    for uri, sets in by_resource.items():
        if uri.endswith(shared):
            continue
        kinds = [next(iter(s["events"])) for s in sets]
        assert kinds == [CREATE, PATCH, PATCH, PATCH, PATCH, DELETE], (uri, kinds)
    assert len(by_resource[f"/Users/{shared}"]) == 10
    assert len(shared_commits) == 10


def test_a_late_commit_with_an_earlier_key_is_not_skipped(ev: Events) -> None:
    """The outbox-ordering hazard, made deterministic: events are delivered and acknowledged,
    then a writer whose transaction was slow commits a row keyed before them. Nothing ever
    moved past it, so the next poll returns it."""
    for _ in range(3):
        ev.entra.post("/Users", _user())
    delivered = ev.drain()
    assert len(delivered) == 3
    early = stamp_of(min(s["iat"] for s in delivered) - 60)
    store = ev.router.service.store
    late = Outbox(
        "ev",
        f"{early}|{secrets.token_hex(6)}",
        {
            "type": "User",
            "id": "late-user",
            "events": {DELETE: {}},
            "origin": "provisioning",
        },
    )
    store.outbox_put("User", [late])
    (again,) = ev.drain()
    assert again["sub_id"]["uri"] == "/Users/late-user"


def stamp_of(seconds: int) -> str:
    from datetime import UTC, datetime

    return stamp(datetime.fromtimestamp(seconds, UTC))


def test_a_poll_reads_what_it_returns_however_many_are_pending(ev: Events) -> None:
    store = ev.router.service.store
    for _ in range(3):
        ev.entra.post("/Users", _user())
    counter = store.counter  # type: ignore[attr-defined]
    before = counter.count
    body = ev.poll(maxEvents=2).json()
    assert len(body["sets"]) == 2 and body["moreAvailable"]
    assert counter.count - before == 2  # one range read per partition
    assert len(EventFeed(store).pending(10)[0]) == 3


def test_an_unresolved_signing_key_delays_delivery_but_not_provisioning(
    events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first deploy starts the app before the deploy tool writes the signing key: its Key
    Vault reference is unresolved. Provisioning goes on and records events; /Events answers
    503 with Retry-After until the key resolves; nothing is lost."""
    import os

    env = {
        "TABLES_CONNECTION_STRING": os.environ["TABLES_CONNECTION_STRING"],
        "SCIM_BEARER_TOKEN": events.entra.token,
        "SCIM_APP_TOKEN": events.app.token,
        "SCIM_APP_SCOPES": "read events",
        "SCIM_EVENTS": "notice",
        "SCIM_EVENTS_SIGNING_KEY": "@Microsoft.KeyVault(SecretUri=https://kv.example/secrets/k)",
        "SCIM_EVENTS_PUSH_TOKEN": "@Microsoft.KeyVault(SecretUri=https://kv.example/secrets/p)",
        "SCIM_EVENTS_PUSH_URL": "https://receiver.example/events",
    }
    events.drain()
    monkeypatch.setattr(function_app, "_router", build_router(Settings.from_env(env)))
    assert events.entra.post("/Users", _user()).status_code == 201
    waiting = events.app.post("/Events", {"returnImmediately": True})
    assert waiting.status_code == 503 and waiting.headers["Retry-After"] == "60"
    monkeypatch.setattr(function_app, "_router", events.router)
    assert [list(s["events"]) for s in events.drain()] == [[CREATE]]
