"""Bad input of every kind is a 4xx SCIM error with scimType and a clear detail — never a
500 — and nothing already stored is changed (RFC 7644 §3.12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_entra_conversation import USER, entra_user
from tests.scimclient import Client, unique

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def assert_scim_error(resp: Any, status: int, scim_type: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status) and body["detail"]
    assert "Traceback" not in resp.text
    if scim_type:
        assert body.get("scimType") == scim_type


@pytest.mark.parametrize(
    ("data", "ctype", "status", "scim_type"),
    [
        (b"{not json", "application/scim+json", 400, "invalidSyntax"),
        (b"[1,2]", "application/scim+json", 400, "invalidSyntax"),
        (b"", "application/scim+json", 400, "invalidSyntax"),
        (b"[" * 100000, "application/scim+json", 400, "invalidSyntax"),
        (b'{"userName": "x"}', "text/plain", 415, None),
        (
            b'{"schemas": "' + USER.encode() + b'", "userName": "x"}',
            "application/scim+json",
            400,
            "invalidSyntax",
        ),
        (b'{"schemas": ["' + USER.encode() + b'"]}', "application/scim+json", 400, "invalidValue"),
        (
            b'{"schemas": ["' + USER.encode() + b'"], "userName": 5.5, "active": "maybe"}',
            "application/scim+json",
            400,
            "invalidValue",
        ),
        (
            b'{"schemas": ["' + USER.encode() + b'"], "userName": "a", "name": "flat"}',
            "application/scim+json",
            400,
            "invalidValue",
        ),
    ],
    ids=[
        "malformed",
        "array",
        "empty",
        "deep-nesting",
        "content-type",
        "schemas-not-list",
        "missing-userName",
        "wrong-types",
        "complex-as-string",
    ],
)
def test_bad_create_bodies(
    scim: Client, data: bytes, ctype: str, status: int, scim_type: str | None
) -> None:
    resp = scim.request("POST", "/Users", data=data, headers={"Content-Type": ctype})
    assert_scim_error(resp, status, scim_type)


def test_body_over_limit(scim: Client) -> None:
    """Bodies over the limit are 413."""
    big = {"schemas": [USER], "userName": unique("big"), "title": "x" * 1_100_000}
    assert_scim_error(scim.post("/Users", big), 413)


def test_over_long_value(scim: Client) -> None:
    """A value longer than any attribute allows: 400 invalidValue."""
    assert_scim_error(
        scim.post("/Users", {"schemas": [USER], "userName": "x" * 40_000}), 400, "invalidValue"
    )


@pytest.mark.parametrize(
    "flt",
    [
        "userName eq",
        'userName xx "a"',
        '(userName eq "a"',
        'userName eq "a" and',
        '"a" eq b',
        'emails[type eq "work"',
        "userName gt true and ) (",
    ],
    ids=[
        "no-value",
        "bad-op",
        "unbalanced",
        "dangling-and",
        "value-first",
        "open-bracket",
        "garbage",
    ],
)
def test_invalid_filters(scim: Client, flt: str) -> None:
    assert_scim_error(scim.get("/Users", params={"filter": flt}), 400, "invalidFilter")


@pytest.mark.parametrize(
    ("ops", "scim_type"),
    [
        ([{"op": "replace", "path": "nosuchattr", "value": "x"}], "invalidPath"),
        ([{"op": "replace", "path": "urn:nope:Schema:attr", "value": "x"}], "invalidPath"),
        ([{"op": "explode", "path": "title", "value": "x"}], None),
        ([{"op": "replace", "path": "emails[type eq", "value": "x"}], "invalidPath"),
        ([{"op": "replace", "path": "active", "value": "perhaps"}], "invalidValue"),
        ([{"op": "remove", "path": "userName"}], "mutability"),
        ("not-a-list", None),
    ],
    ids=[
        "unknown-attr",
        "unknown-urn",
        "bad-op",
        "bad-path",
        "bad-bool",
        "remove-required",
        "ops-not-list",
    ],
)
def test_bad_patches_leave_user_unchanged(scim: Client, ops: Any, scim_type: str | None) -> None:
    created = scim.post("/Users", entra_user(unique("bp") + "@x.com", unique("e"))).json()
    resp = scim.patch(f"/Users/{created['id']}", {"schemas": [PATCH], "Operations": ops})
    assert_scim_error(resp, 400, scim_type)
    after = scim.get(f"/Users/{created['id']}").json()
    assert after["meta"]["version"] == created["meta"]["version"]


@pytest.mark.parametrize(
    "weird",
    ["a#EXT#b", "a?b", "a\\b", "%2F", "a\tb"],
    ids=["hash", "question", "backslash", "slash", "tab"],
)
def test_key_characters(scim: Client, weird: str) -> None:
    """Keys forbid `/ \\ # ?`: names containing them still work (encoded keys); ids with them
    are simply not found."""
    name = f"{unique('k')}{weird}@contoso.onmicrosoft.com"
    created = scim.post("/Users", entra_user(name, unique("e") + weird))
    assert created.status_code == 201, created.text
    found = scim.get("/Users", params={"filter": f"userName eq {json.dumps(name)}"}).json()
    assert found["totalResults"] == 1
    assert (
        scim.get(
            "/Users/" + weird.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
        ).status_code
        == 404
    )


def test_wrong_method(scim: Client) -> None:
    assert_scim_error(scim.request("DELETE", "/Users"), 405)


def test_bad_query_parameters(scim: Client) -> None:
    assert_scim_error(scim.get("/Users", params={"startIndex": "abc"}), 400, "invalidValue")
    assert_scim_error(scim.get("/Users", params={"sortOrder": "sideways"}), 400, "invalidValue")
