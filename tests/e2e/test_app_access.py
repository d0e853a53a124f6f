"""The app's own credentials and their scopes, through the local host (docs/app-guide.md;
scim_core/access.py, scim_core/app_extension.py).

The session's host serves ``function_app``'s triggers; each test swaps in the request handler
built from app settings with the app's credentials (``function_app._router``, which the
triggers read on every request), so the requests below take the same path Azure runs. App JWTs
are signed with keys made here and served by a loopback JWKS server; Entra's OAuth mode has
keys of its own on a second server, so each trust domain is tested against the other.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

import function_app
from devhost.server import LocalHost
from scim_core.router import Router
from scim_core.settings import Settings
from scim_core.wiring import build_router
from tests.scimclient import Client, unique
from tests.unit.test_auth import JwksServer, public_jwk, serve_jwks

APP = "urn:scimfunc:schemas:extension:app:1.0:User"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ATTRIBUTES = [
    {"name": "tier", "type": "string", "description": "The app's licence tier."},
    {"name": "seats", "type": "integer"},
]
TENANT = "11111111-2222-3333-4444-555555555555"
APP_ISSUER = f"https://sts.windows.net/{TENANT}/"
APP_AUDIENCE = "api://scim-endpoint-e2e"
ENTRA_ISSUER = "https://login.example.test/entra-oauth/"
ENTRA_AUDIENCE = "api://scim-provisioning-e2e"
KID = "k1"
SCOPE_SETS = [
    frozenset(c)
    for n in range(1, 4)
    for c in itertools.combinations(("read", "events", "app:write"), n)
]


def scope_id(scopes: frozenset[str]) -> str:
    return "+".join(sorted(scopes)) or "no-scope"


@dataclass
class Setup:
    """What the tests know of the configured deployment."""

    local: LocalHost
    base: str
    entra_token: str
    app_token: str
    app_token_secondary: str
    app_key: rsa.RSAPrivateKey
    entra_key: rsa.RSAPrivateKey
    app_jwks: JwksServer
    entra_jwks: JwksServer

    def env(self, scopes: frozenset[str] | str) -> dict[str, str]:
        text = scopes if isinstance(scopes, str) else " , ".join(sorted(scopes))
        return {
            "SCIM_BEARER_TOKEN": self.entra_token,
            "SCIM_APP_TOKEN": self.app_token,
            "SCIM_APP_TOKEN_SECONDARY": self.app_token_secondary,
            "SCIM_APP_SCOPES": text,
            "SCIM_APP_JWT_ISSUER": APP_ISSUER,
            "SCIM_APP_JWT_AUDIENCE": APP_AUDIENCE,
            "SCIM_APP_JWKS_URL": self.app_jwks.url,
            "SCIM_JWT_ISSUER": ENTRA_ISSUER,
            "SCIM_JWT_AUDIENCE": ENTRA_AUDIENCE,
            "SCIM_JWKS_URL": self.entra_jwks.url,
            "SCIM_APP_EXTENSION_ATTRIBUTES": json.dumps(ATTRIBUTES),
        }

    def client(self, token: str) -> Client:
        return Client(self.base, token)

    def app_jwt(self, roles: list[str] | None, **claims: Any) -> str:
        return signed(self.app_key, APP_ISSUER, APP_AUDIENCE, roles=roles, **claims)

    def entra_jwt(self, **claims: Any) -> str:
        return signed(self.entra_key, ENTRA_ISSUER, ENTRA_AUDIENCE, **claims)


def signed(key: rsa.RSAPrivateKey, iss: str, aud: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": iss, "aud": aud, "sub": "sp-object-id", "azp": "app-client-id", "tid": TENANT}
    body |= {"iat": now, "nbf": now, "exp": now + 3600} | claims
    payload = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KID})


@pytest.fixture(scope="module")
def setup(host: tuple[LocalHost, str]) -> Iterator[Setup]:
    local, entra_token = host

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    app_key, entra_key = key(), key()
    app_jwks, stop_app = serve_jwks([public_jwk(app_key, KID)])
    entra_jwks, stop_entra = serve_jwks([public_jwk(entra_key, KID)])
    yield Setup(
        local,
        local.base_url + "/scim/v2",
        entra_token,
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        app_key,
        entra_key,
        app_jwks,
        entra_jwks,
    )
    stop_app()
    stop_entra()


@pytest.fixture(scope="module")
def routers(setup: Setup) -> dict[str, Router]:
    """One request handler per static-token scope set, built as ``function_app`` builds it."""
    return {
        scope_id(s): build_router(Settings.from_env({**setup.env(s), **_storage()}))
        for s in [*SCOPE_SETS, frozenset()]
    }


def _storage() -> dict[str, str]:
    import os

    return {"TABLES_CONNECTION_STRING": os.environ["TABLES_CONNECTION_STRING"]}


@pytest.fixture
def serve_with(routers: dict[str, Router], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the host answer with the handler whose static app token has ``scopes``."""

    def use(scopes: frozenset[str]) -> None:
        monkeypatch.setattr(function_app, "_router", routers[scope_id(scopes)])

    return use


@pytest.fixture(scope="module")
def target(setup: Setup, routers: dict[str, Router]) -> dict[str, str]:
    """A user in a group, shared by the read tests (made with Entra's token)."""
    old = function_app._router
    function_app._router = routers[scope_id(frozenset())]
    try:
        entra = setup.client(setup.entra_token)
        name = unique("app") + "@contoso.com"
        user = entra.post("/Users", {"schemas": [USER], "userName": name, "active": True})
        assert user.status_code == 201, user.text
        group = entra.post(
            "/Groups",
            {
                "schemas": [GROUP],
                "displayName": unique("g"),
                "members": [{"value": user.json()["id"]}],
            },
        )
        assert group.status_code == 201, group.text
    finally:
        function_app._router = old
    return {"user": user.json()["id"], "userName": name, "group": group.json()["id"]}


# --- the matrix: every route x method x credential --------------------------------------------

ROUTES = [
    "/Users",
    "/Users/{user}",
    "/Users/.search",
    "/Groups",
    "/Groups/{group}",
    "/Groups/.search",
    "/.search",
    "/Bulk",
    "/ServiceProviderConfig",
    "/Schemas",
    f"/Schemas/{APP}",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/Me",
    "/Events",
    "/NoSuchEndpoint",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def body_for(route: str, method: str, ids: dict[str, str]) -> Any:
    """A well-formed body for the request, so that a refusal is about rights, not input."""
    if method in ("GET", "DELETE"):
        return None
    if route.endswith(".search"):
        return {"schemas": [SEARCH], "count": 1}
    if route == "/Users" and method == "POST":
        return {"schemas": [USER], "userName": unique("m") + "@contoso.com"}
    if route == "/Groups" and method == "POST":
        return {"schemas": [GROUP], "displayName": unique("mg")}
    if route == "/Bulk":
        user = {"schemas": [USER], "userName": unique("b") + "@contoso.com"}
        op = {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user}
        return {"schemas": [BULK], "Operations": [op]}
    if route == "/Users/{user}" and method == "PUT":
        return {"schemas": [USER, APP], "userName": ids["userName"], APP: {"tier": "gold"}}
    if route == "/Users/{user}" and method == "PATCH":
        return {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": f"{APP}:tier", "value": "silver"}],
        }
    if route == "/Groups/{group}" and method == "PUT":
        return {"schemas": [GROUP], "displayName": unique("pg")}
    if route == "/Groups/{group}" and method == "PATCH":
        return {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "externalId", "value": "x"}],
        }
    return {"schemas": [USER]}


def app_may(route: str, method: str, scopes: frozenset[str]) -> bool:
    """The rule of docs/app-guide.md, written out independently of scim_core/access.py."""
    if route == "/Events":
        return "events" in scopes
    if method == "GET" or (method == "POST" and route.endswith(".search")):
        return "read" in scopes
    if route == "/Users/{user}" and method in ("PUT", "PATCH"):
        return "app:write" in scopes
    return False


def send(
    setup: Setup, token: str | None, route: str, method: str, ids: dict[str, str]
) -> requests.Response:
    path = route.format(**ids)
    headers = {} if token is not None else {"Authorization": ""}
    return setup.client(token or "").request(
        method, path, body_for(route, method, ids), headers=headers
    )


def assert_forbidden(resp: requests.Response, *secrets_: str) -> None:
    """403 as a SCIM error (RFC 7644 §3.12) without scimType, and no credential in it."""
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["schemas"] == [ERROR] and body["status"] == "403"
    assert "scimType" not in body
    assert body["detail"]
    for secret in secrets_:
        assert secret not in resp.text


def assert_served(resp: requests.Response, route: str) -> None:
    """Past authorization: whatever the route answers, but not 401/403 and never a 5xx (501 is
    /Me's and /Events' documented answer)."""
    assert resp.status_code not in (401, 403), resp.text
    assert resp.status_code < 500 or (resp.status_code == 501 and route in ("/Me", "/Events"))


CASES = list(itertools.product(ROUTES, METHODS))
CASE_IDS = [f"{m}-{r.strip('/').replace('/', '_') or 'base'}" for r, m in CASES]


# Every non-empty set: an unset or empty SCIM_APP_SCOPES means the default, read (the test
# below); a credential with no scope at all is the JWT without roles.
@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=scope_id)
@pytest.mark.parametrize(("route", "method"), CASES, ids=CASE_IDS)
def test_app_token_scopes(
    setup: Setup,
    serve_with: Any,
    target: dict[str, str],
    scopes: frozenset[str],
    route: str,
    method: str,
) -> None:
    """The app's static token does what SCIM_APP_SCOPES allows and gets 403 for the rest."""
    serve_with(scopes)
    resp = send(setup, setup.app_token, route, method, target)
    if app_may(route, method, scopes):
        assert_served(resp, route)
        if route == "/Events":
            assert resp.status_code == 501
    else:
        assert_forbidden(resp, setup.app_token)


ROLE_SETS = [[], ["read"], ["read", "events", "app:write"], ["app:write", "Some.Other.Role"]]


@pytest.mark.parametrize("roles", ROLE_SETS, ids=lambda r: "+".join(r) or "no-roles")
@pytest.mark.parametrize(("route", "method"), CASES, ids=CASE_IDS)
def test_app_jwt_roles(
    setup: Setup, serve_with: Any, target: dict[str, str], roles: list[str], route: str, method: str
) -> None:
    """An Entra-issued JWT of the app's identity: its ``roles`` claim is its scopes (the static
    token's scopes play no part); roles the service does not know grant nothing."""
    serve_with(frozenset())
    token = setup.app_jwt(roles)
    resp = send(setup, token, route, method, target)
    if app_may(route, method, frozenset(roles)):
        assert_served(resp, route)
    else:
        assert_forbidden(resp, token)


@pytest.mark.parametrize(("route", "method"), CASES, ids=CASE_IDS)
def test_entra_has_full_provisioning_rights(
    setup: Setup, serve_with: Any, target: dict[str, str], route: str, method: str
) -> None:
    """Entra's Secret Token reaches every route and method (its answer may be 404/405/501 but
    never 401/403), except /Events, which needs the events scope Entra has not."""
    serve_with(frozenset({"read", "events", "app:write"}))
    ids = dict(target)
    if method == "DELETE" and route in ("/Users/{user}", "/Groups/{group}"):
        ids = _fresh(setup)  # keep the shared resources for the other tests
    resp = send(setup, setup.entra_token, route, method, ids)
    if route == "/Events":
        assert_forbidden(resp)
    else:
        assert_served(resp, route)


@pytest.mark.parametrize(("route", "method"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("token", [None, "unknown-token"], ids=["no-token", "unknown-token"])
def test_no_or_unknown_credential_is_401(
    setup: Setup,
    serve_with: Any,
    target: dict[str, str],
    token: str | None,
    route: str,
    method: str,
) -> None:
    serve_with(frozenset({"read", "events", "app:write"}))
    resp = send(setup, token, route, method, target)
    assert resp.status_code == 401, resp.text
    assert resp.json()["status"] == "401"


def _fresh(setup: Setup) -> dict[str, str]:
    entra = setup.client(setup.entra_token)
    name = unique("del") + "@contoso.com"
    user = entra.post("/Users", {"schemas": [USER], "userName": name})
    group = entra.post("/Groups", {"schemas": [GROUP], "displayName": unique("delg")})
    assert user.status_code == group.status_code == 201
    return {"user": user.json()["id"], "userName": name, "group": group.json()["id"]}


# --- the app-owned extension ------------------------------------------------------------------


@pytest.fixture
def user(setup: Setup, serve_with: Any) -> dict[str, Any]:
    """A fresh user provisioned by Entra (with a manager, a title and an email), served by a
    handler whose app token has read and app:write."""
    serve_with(frozenset({"read", "app:write"}))
    entra = setup.client(setup.entra_token)
    body = {
        "schemas": [USER],
        "userName": unique("own") + "@contoso.com",
        "externalId": str(uuid.uuid4()),
        "active": True,
        "title": "Engineer",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": "ada@contoso.com", "primary": True}],
    }
    created = entra.post("/Users", body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def read(setup: Setup, uid: str) -> dict[str, Any]:
    resp = setup.client(setup.entra_token).get(f"/Users/{uid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def without_meta(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("meta", "schemas", APP)}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": f"{APP}:tier", "value": "gold"}],
        [{"op": "add", "path": APP, "value": {"tier": "gold", "seats": 3}}],
        [{"op": "replace", "value": {f"{APP}:tier": "gold"}}],
        [{"op": "Replace", "path": f"{APP.upper()}:TIER", "value": "gold"}],
    ],
    ids=["attribute-path", "extension-path", "path-less-dotted-key", "legacy-dialect-case"],
)
def test_app_write_patch_changes_the_extension(
    setup: Setup, user: dict[str, Any], operations: list[dict[str, Any]]
) -> None:
    """app:write PATCHes the app-owned extension; everything Entra provisioned stays as it was."""
    app = setup.client(setup.app_token)
    resp = app.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": operations})
    assert resp.status_code == 200, resp.text
    after = read(setup, user["id"])
    assert after[APP]["tier"] == "gold"
    assert APP in after["schemas"]
    assert without_meta(after) == without_meta(user)


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "active", "value": False}],
        [{"op": "replace", "path": "name.givenName", "value": "Eve"}],
        [{"op": "add", "path": 'emails[type eq "work"].value', "value": "eve@contoso.com"}],
        [{"op": "replace", "value": {"active": False}}],
        [{"op": "replace", "value": {f"{APP}:tier": "gold", "title": "CEO"}}],
        [
            {"op": "replace", "path": f"{APP}:tier", "value": "gold"},
            {"op": "remove", "path": "title"},
        ],
        [
            {
                "op": "replace",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "value": "X",
            }
        ],
        [
            {
                "op": "replace",
                "path": "urn:scimfunc:schemas:extension:graph:1.0:User:jobTitle",
                "value": "X",
            }
        ],
        [{"op": "replace", "path": "urn:scimfunc:schemas:extension:app:1.0:Userx", "value": "X"}],
    ],
    ids=[
        "deactivate",
        "sub-attribute",
        "filtered-path",
        "path-less-core",
        "path-less-mixed",
        "one-bad-op-of-two",
        "enterprise-extension",
        "graph-extension",
        "urn-prefix-lookalike",
    ],
)
def test_app_write_patch_cannot_touch_what_entra_owns(
    setup: Setup, user: dict[str, Any], operations: list[dict[str, Any]]
) -> None:
    """Any operation aimed outside the app's extension is 403 and nothing is written, not even
    the operations of the same request that were in scope (PATCH is atomic, RFC 7644 §3.5.2)."""
    app = setup.client(setup.app_token)
    resp = app.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": operations})
    assert_forbidden(resp, setup.app_token)
    assert "app:write" in resp.json()["detail"]
    after = read(setup, user["id"])
    assert after == {**user, "meta": after["meta"]} and after["meta"] == user["meta"]


def test_app_write_put_round_trip_changes_only_the_extension(
    setup: Setup, user: dict[str, Any]
) -> None:
    """The common client pattern: GET the user, change the extension, PUT it all back. Entra's
    attributes in the body are as stored, so the PUT is allowed and changes the extension."""
    app = setup.client(setup.app_token)
    got = app.get(f"/Users/{user['id']}").json()
    got[APP] = {"tier": "platinum", "seats": 5}
    got["schemas"].append(APP)
    resp = app.put(f"/Users/{user['id']}", got)
    assert resp.status_code == 200, resp.text
    after = read(setup, user["id"])
    assert after[APP] == {"tier": "platinum", "seats": 5}
    assert without_meta(after) == without_meta(user)


def test_app_write_put_of_the_extension_alone_keeps_the_rest(
    setup: Setup, user: dict[str, Any]
) -> None:
    """What the app's PUT leaves out is not asserted (RFC 7644 §3.5.1) and kept: an app never
    erases a user by sending only its own data (and userName, which a PUT must carry: it is
    required, RFC 7643 §4.1)."""
    app = setup.client(setup.app_token)
    body = {"schemas": [USER, APP], "userName": user["userName"], APP: {"seats": 2}}
    resp = app.put(f"/Users/{user['id']}", body)
    assert resp.status_code == 200, resp.text
    after = read(setup, user["id"])
    assert after[APP] == {"seats": 2}
    assert without_meta(after) == without_meta(user)


@pytest.mark.parametrize(
    "change",
    [
        {"userName": "someone-else@contoso.com"},
        {"active": False},
        {"title": "CEO"},
        {"externalId": "not-the-object-id"},
    ],
    ids=["userName", "active", "title", "externalId"],
)
def test_app_write_put_that_changes_entra_attributes_is_403(
    setup: Setup, user: dict[str, Any], change: dict[str, Any]
) -> None:
    app = setup.client(setup.app_token)
    got = app.get(f"/Users/{user['id']}").json()
    resp = app.put(f"/Users/{user['id']}", {**got, **change, APP: {"tier": "gold"}})
    assert_forbidden(resp, setup.app_token)
    assert next(iter(change)) in resp.json()["detail"]
    after = read(setup, user["id"])
    assert APP not in after and after["meta"] == user["meta"]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        (
            "PATCH",
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": f"{APP}:tier", "value": "entra"}],
            },
        ),
        (
            "PATCH",
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": APP, "value": {"tier": "entra"}}],
            },
        ),
        ("PATCH", {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": f"{APP}:tier"}]}),
        (
            "PATCH",
            {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "replace", "value": {f"{APP}:tier": "entra", "title": "Boss"}}
                ],
            },
        ),
        ("PUT", "put"),
        ("BULK", "bulk"),
    ],
    ids=[
        "patch-attribute",
        "patch-extension",
        "patch-remove",
        "patch-path-less",
        "put",
        "bulk-patch",
    ],
)
def test_entra_cannot_change_the_app_extension(
    setup: Setup, user: dict[str, Any], method: str, body: Any
) -> None:
    """Entra's writes succeed (its other changes apply) but leave the app's data as the app set
    it: to Entra the extension is read-only, ignored leniently (ENTRA.md; app_extension.py)."""
    app = setup.client(setup.app_token)
    entra = setup.client(setup.entra_token)
    set_by_app = app.patch(
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": APP, "value": {"tier": "app", "seats": 1}}],
        },
    )
    assert set_by_app.status_code == 200, set_by_app.text
    path = f"/Users/{user['id']}"
    if method == "PUT":
        resp = entra.put(
            path,
            {
                **{k: v for k, v in user.items() if k != "meta"},
                APP: {"tier": "entra"},
                "title": "Boss",
            },
        )
    elif method == "BULK":
        op = {
            "method": "PATCH",
            "path": path,
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": f"{APP}:tier", "value": "entra"}],
            },
        }
        resp = entra.post("/Bulk", {"schemas": [BULK], "Operations": [op]})
        assert resp.json()["Operations"][0]["status"].startswith("2"), resp.text
    else:
        resp = entra.patch(path, body)
    assert resp.status_code == 200, resp.text
    after = read(setup, user["id"])
    assert after[APP] == {"tier": "app", "seats": 1}
    if method == "PUT" or "Boss" in json.dumps(body):
        assert after["title"] == "Boss"  # the rest of Entra's request did apply


def test_entra_create_ignores_the_app_extension(setup: Setup, serve_with: Any) -> None:
    serve_with(frozenset({"read"}))
    entra = setup.client(setup.entra_token)
    body = {"schemas": [USER, APP], "userName": unique("c") + "@contoso.com", APP: {"tier": "x"}}
    created = entra.post("/Users", body)
    assert created.status_code == 201, created.text
    assert APP not in created.json()
    assert APP not in read(setup, created.json()["id"])


def test_the_app_extension_is_published(setup: Setup, serve_with: Any) -> None:
    """/Schemas serves the extension with the operator's attributes; the User resource type
    lists it (RFC 7643 §6, §7), so an app can discover what it may write."""
    serve_with(frozenset({"read"}))
    app = setup.client(setup.app_token)
    schema = app.get(f"/Schemas/{APP}")
    assert schema.status_code == 200, schema.text
    names = {a["name"]: a for a in schema.json()["attributes"]}
    assert set(names) == {"tier", "seats"}
    assert names["tier"]["mutability"] == "readWrite" and names["seats"]["type"] == "integer"
    user_type = app.get("/ResourceTypes/User").json()
    assert {"schema": APP, "required": False} in user_type["schemaExtensions"]


def test_an_app_can_filter_on_its_extension(setup: Setup, user: dict[str, Any]) -> None:
    app = setup.client(setup.app_token)
    tier = unique("t")
    op = {"op": "replace", "path": f"{APP}:tier", "value": tier}
    assert app.patch(f"/Users/{user['id']}", {"Operations": [op]}).status_code == 200
    found = app.get("/Users", params={"filter": f'{APP}:tier eq "{tier}"'}).json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]


def test_a_bad_value_for_the_extension_is_400(setup: Setup, user: dict[str, Any]) -> None:
    app = setup.client(setup.app_token)
    op = {"op": "replace", "path": f"{APP}:seats", "value": "many"}
    resp = app.patch(f"/Users/{user['id']}", {"Operations": [op]})
    assert resp.status_code == 400 and resp.json()["scimType"] == "invalidValue", resp.text


# --- credentials ------------------------------------------------------------------------------


def test_the_secondary_app_token_is_accepted(
    setup: Setup, serve_with: Any, target: dict[str, str]
) -> None:
    """Two app tokens at once, so the app's token rotates without downtime (like Entra's)."""
    serve_with(frozenset({"read"}))
    resp = setup.client(setup.app_token_secondary).get(f"/Users/{target['user']}")
    assert resp.status_code == 200, resp.text
    assert_forbidden(setup.client(setup.app_token_secondary).delete(f"/Users/{target['user']}"))


def test_scopes_and_extension_come_from_the_app_settings(
    setup: Setup, target: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host builds its handler from the environment (as from Azure app settings):
    SCIM_APP_SCOPES with commas and spaces, and an unset scope list means read."""
    for name, value in {**setup.env("read,events  app:write"), **_storage()}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(function_app, "_router", None)
    app = setup.client(setup.app_token)
    assert app.get(f"/Users/{target['user']}").status_code == 200
    assert app.post("/Events", {}).status_code == 501
    assert_forbidden(app.post("/Users", {"schemas": [USER], "userName": unique("x")}))
    monkeypatch.delenv("SCIM_APP_SCOPES")
    monkeypatch.setattr(function_app, "_router", None)
    assert app.get(f"/Users/{target['user']}").status_code == 200
    assert_forbidden(app.post("/Events", {}))


def test_entra_token_is_not_an_app_token(setup: Setup, serve_with: Any) -> None:
    """Rotating Entra's token never touches the app: the two are separate settings, and an app
    token presented where Entra's is expected carries only the app's rights."""
    serve_with(frozenset({"read"}))
    assert setup.app_token != setup.entra_token
    resp = setup.client(setup.app_token).post(
        "/Users", {"schemas": [USER], "userName": unique("y")}
    )
    assert_forbidden(resp, setup.app_token)
    assert "read" in resp.json()["detail"] or "Entra" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("app-key-as-entra", 401),
        ("entra-key-as-app", 401),
        ("entra-oauth", 200),
        ("app-roles-read", 200),
        ("app-expired", 401),
        ("app-wrong-audience", 401),
        ("app-audience-entra-issuer", 401),
    ],
    ids=lambda v: str(v),
)
def test_jwt_trust_domains_stay_apart(
    setup: Setup, serve_with: Any, target: dict[str, str], which: str, expected: int
) -> None:
    """Each JWT mode verifies only with its own keys: the app's key never signs for Entra's
    OAuth issuer and vice versa (a token naming both audiences under one issuer:
    tests/unit/test_app_credentials.py)."""
    serve_with(frozenset({"read"}))
    tokens = {
        "app-key-as-entra": signed(setup.app_key, ENTRA_ISSUER, ENTRA_AUDIENCE),
        "entra-key-as-app": signed(setup.entra_key, APP_ISSUER, APP_AUDIENCE, roles=["read"]),
        "entra-oauth": setup.entra_jwt(),
        "app-roles-read": setup.app_jwt(["read"]),
        "app-expired": setup.app_jwt(["read"], exp=1_000_000_000, iat=999_999_000, nbf=999_999_000),
        "app-wrong-audience": signed(setup.app_key, APP_ISSUER, "api://other", roles=["read"]),
        "app-audience-entra-issuer": signed(setup.app_key, ENTRA_ISSUER, APP_AUDIENCE),
    }
    token = tokens[which]
    resp = setup.client(token).get(f"/Users/{target['user']}")
    assert resp.status_code == expected, resp.text
    assert token not in resp.text


def test_status_is_not_for_app_credentials(setup: Setup, serve_with: Any) -> None:
    """GET /status (the operator's health page, outside the SCIM base) takes Entra's
    credentials; an app credential, whatever its scopes, gets 403."""
    serve_with(frozenset({"read", "events", "app:write"}))
    url = setup.local.base_url + "/status"
    entra = requests.get(url, headers={"Authorization": f"Bearer {setup.entra_token}"}, timeout=30)
    assert entra.status_code == 200, entra.text
    for token in (setup.app_token, setup.app_jwt(["read", "events", "app:write"])):
        app = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert_forbidden(app, token)
