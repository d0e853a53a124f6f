"""Whatever the service accepts it can store, read, list, filter and delete; whatever it cannot,
it refuses with a 4xx before anything is written (RFC 7644 §3.12).

Generated JSON bodies (every JSON type, strings with lone surrogates, control characters and
astral characters, huge and non-finite numbers, duplicate member names, deep nesting) go through
the local host over Azurite on every write route: POST, PUT, PATCH and Bulk. Each answer is
either a SCIM 4xx with nothing written (or the stored resource unchanged), or a 2xx after which
the resource reads back, appears in a filtered listing and a full listing, and deletes. A lone
surrogate once answered 500 *after* the user was stored, and every listing failed from then on.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scimclient import Client, unique

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

ROUND_TRIP = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that stresses UTF-8 and JSON: lone surrogates, NUL and other controls, astral planes,
# noncharacters, plus ordinary letters.
chars = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(categories=["Cs"]),
    st.sampled_from(["\x00", "\x1f", "\u2028", "\ufffe", "\U0001f600", "#", "|", "/", "?"]),
)
texts = st.text(chars, max_size=20) | st.sampled_from(["alias#EXT#@contoso.com", ""])
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**400, 1e308, -0.0]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
ATTRIBUTES = [
    "displayName",
    "nickName",
    "title",
    "active",
    "emails",
    "phoneNumbers",
    "name",
    "addresses",
    "locale",
    "preferredLanguage",
    ENTERPRISE,
    "roles",
    "x509Certificates",
    "notAnAttribute",
]
raw_texts = st.sampled_from(
    [
        # What json.dumps cannot produce: duplicate names, non-finite and out-of-range numbers,
        # escapes of lone surrogates, deep nesting.
        '{{"userName": "{n}", "userName": "{n}2", "externalId": "{t}"}}',
        '{{"userName": "{n}", "externalId": "{t}", "title": 1e999999}}',
        '{{"userName": "{n}", "externalId": "{t}", "title": ' + "9" * 5000 + "}}",
        '{{"userName": "{n}", "externalId": "{t}", "title": NaN}}',
        '{{"userName": "{n}\\ud800", "externalId": "{t}"}}',
        '{{"userName": "{n}", "externalId": "{t}", "name": {{"givenName": "\\udfff"}}}}',
        '{{"userName": "{n}", "externalId": "{t}", "title": ' + "[" * 3000 + "]" * 3000 + "}}",
    ]
)


@st.composite
def user_bodies(draw: st.DrawFn, token: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER],
        "userName": draw(st.one_of(st.just(unique("rt")), texts)),
        "externalId": token,
    }
    for name in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=4, unique=True)):
        body[name] = draw(json_values)
    return body


def encode(body: Any) -> bytes:
    # ensure_ascii escapes lone surrogates as \udXXX, the only way JSON text can carry one.
    return json.dumps(body, allow_nan=True).encode()


def check_error(resp: Any) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(resp.status_code)
    assert body["detail"] and "Traceback" not in resp.text


def by_token(scim: Client, token: str) -> list[dict[str, Any]]:
    resp = scim.get("/Users", params={"filter": f'externalId eq "{token}"'})
    assert resp.status_code == 200, resp.text[:300]
    resources: list[dict[str, Any]] = resp.json()["Resources"]
    return resources


def check_round_trip(scim: Client, user_id: str, token: str) -> None:
    """Reads back, lists (filtered by an index and by a scan), renders as JSON, deletes."""
    got = scim.get(f"/Users/{user_id}")
    assert got.status_code == 200, got.text[:300]
    assert [u["id"] for u in by_token(scim, token)] == [user_id]
    scanned = scim.get("/Users", params={"filter": f'externalId eq "{token}" or title pr'})
    assert scanned.status_code == 200, scanned.text[:300]
    assert user_id in {u["id"] for u in scanned.json()["Resources"]}
    assert scim.delete(f"/Users/{user_id}").status_code == 204
    assert scim.get(f"/Users/{user_id}").status_code == 404
    assert by_token(scim, token) == []


def test_create_stores_only_what_round_trips(scim: Client) -> None:
    @ROUND_TRIP
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        token = unique("tok")
        if data.draw(st.booleans()):
            raw = encode(data.draw(user_bodies(token)))
        else:
            raw = data.draw(raw_texts).format(n=unique("raw"), t=token).encode()
        resp = scim.post("/Users", data=raw)
        if resp.status_code >= 400:
            check_error(resp)
            assert by_token(scim, token) == [], "refused, yet stored"
            return
        assert resp.status_code == 201, resp.text[:300]
        check_round_trip(scim, resp.json()["id"], token)

    check()


def test_put_and_patch_change_only_what_round_trips(scim: Client) -> None:
    @ROUND_TRIP
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        token = unique("tok")
        created = scim.post(
            "/Users", {"schemas": [USER], "userName": unique(), "externalId": token}
        )
        assert created.status_code == 201
        user_id = created.json()["id"]
        before = scim.get(f"/Users/{user_id}").json()
        value = data.draw(json_values)
        kind = data.draw(st.sampled_from(["put", "patch-path", "patch-object"]))
        if kind == "put":
            body = data.draw(user_bodies(token))
            resp = scim.put(f"/Users/{user_id}", data=encode(body))
        else:
            name = data.draw(st.sampled_from(ATTRIBUTES[:-1]))
            op = data.draw(st.sampled_from(["add", "replace"]))
            operation = (
                {"op": op, "path": name, "value": value}
                if kind == "patch-path"
                else {"op": op, "value": {name: value}}
            )
            resp = scim.patch(
                f"/Users/{user_id}",
                data=encode({"schemas": [PATCH_OP], "Operations": [operation]}),
            )
        if resp.status_code >= 400:
            check_error(resp)
            assert scim.get(f"/Users/{user_id}").json() == before, "refused, yet changed"
            assert scim.delete(f"/Users/{user_id}").status_code == 204
            return
        assert resp.status_code == 200, resp.text[:300]
        check_round_trip(scim, user_id, token)

    check()


def test_bulk_creates_only_what_round_trips(scim: Client) -> None:
    @ROUND_TRIP
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        token = unique("tok")
        body = data.draw(user_bodies(token))
        request = {
            "schemas": [BULK],
            "Operations": [{"method": "POST", "path": "/Users", "bulkId": "b1", "data": body}],
        }
        resp = scim.post("/Bulk", data=encode(request))
        if resp.status_code >= 400:
            check_error(resp)
            assert by_token(scim, token) == []
            return
        assert resp.status_code == 200, resp.text[:300]
        (result,) = resp.json()["Operations"]
        if int(result["status"]) >= 400:
            assert result["response"]["schemas"] == [ERROR]
            assert by_token(scim, token) == []
            return
        check_round_trip(scim, result["location"].rsplit("/", 1)[1], token)

    check()


def test_full_listing_still_answers(scim: Client) -> None:
    """After everything above, the whole tenant still lists."""
    resp = scim.get("/Users", params={"count": "1000"})
    assert resp.status_code == 200, resp.text[:300]
