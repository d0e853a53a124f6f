"""The event producer's rows and their SETs, in process: notice and full modes, the fallbacks to
a notice, activate/deactivate, and both signing algorithms with the RFC 7638 ``kid``."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from scim_core.events.record import (
    ACTIVATE,
    DEACTIVATE,
    DELETE,
    MAX_FULL_BYTES,
    PREFIX,
    EventProducer,
)
from scim_core.events.tokens import EventConfigError, SetEncoder, parse_jti
from scim_core.outbox import ChangeRecord
from scim_core.store import Member, MemberChange
from scim_core.store.protocol import event_key

USER = {"id": "u1", "userName": "ann@x", "active": True, "meta": {"lastModified": "t"}}


def body(mode: str, record: ChangeRecord) -> dict[str, Any]:
    (row,) = EventProducer(mode)(record)
    assert row.queue == "ev" and row.key is None
    return dict(row.body)


def test_full_events_carry_the_resource_and_notices_only_names() -> None:
    created = ChangeRecord("User", "u1", "create", None, USER)
    assert body("full", created)["events"] == {f"{PREFIX}create:full": {"data": USER}}
    assert body("notice", created)["events"] == {
        f"{PREFIX}create:notice": {"attributes": ["active", "userName"]}
    }


def test_a_group_member_change_is_a_notice_even_in_full_mode() -> None:
    group = {"id": "g1", "displayName": "G"}
    record = ChangeRecord(
        "Group", "g1", "patch", group, group, members=MemberChange(add=[Member("u1")])
    )
    assert body("full", record)["events"] == {f"{PREFIX}patch:notice": {"attributes": ["members"]}}


def test_a_resource_too_large_for_a_full_event_is_sent_as_a_notice() -> None:
    big = {**USER, "nickName": "x" * (MAX_FULL_BYTES + 1)}
    record = ChangeRecord("User", "u1", "put", USER, big)
    assert body("full", record)["events"] == {f"{PREFIX}put:notice": {"attributes": ["nickName"]}}


@pytest.mark.parametrize(
    ("before", "after", "extra"),
    [
        ({"active": True}, {"active": False}, DEACTIVATE),
        ({}, {"active": False}, DEACTIVATE),
        ({"active": False}, {"active": True}, ACTIVATE),
        ({"active": False}, {}, ACTIVATE),
        ({"active": True}, {"active": True, "title": "x"}, None),
    ],
    ids=["off", "absent-to-off", "on", "off-to-absent", "no-flip"],
)
def test_active_flips_add_their_event_to_the_same_set(
    before: dict[str, Any], after: dict[str, Any], extra: str | None
) -> None:
    events = body("notice", ChangeRecord("User", "u1", "patch", before, after))["events"]
    assert list(events)[0] == f"{PREFIX}patch:notice"
    assert list(events)[1:] == ([extra] if extra else [])


def test_a_delete_is_one_delete_event_and_extensions_are_named_by_urn() -> None:
    assert body("notice", ChangeRecord("User", "u1", "delete", None, None))["events"] == {
        DELETE: {}
    }
    urn = "urn:scimfunc:schemas:extension:app:1.0:User"
    record = ChangeRecord("User", "u1", "patch", {urn: {"a": 1, "b": 2}}, {urn: {"a": 1, "b": 3}})
    assert body("notice", record)["events"][f"{PREFIX}patch:notice"]["attributes"] == [f"{urn}:b"]


def test_events_off_writes_nothing_and_a_bad_mode_is_refused() -> None:
    assert list(EventProducer("off")(ChangeRecord("User", "u1", "create", None, USER))) == []
    with pytest.raises(ValueError, match="SCIM_EVENTS"):
        EventProducer("loud")


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_signed_sets_verify_with_the_published_key_and_its_thumbprint_kid(alg: str) -> None:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    encoder = SetEncoder(issuer="https://iss", audience="app", signing_key=_pem(key))
    row = body("notice", ChangeRecord("User", "u1", "create", None, USER, txn="t1"))
    k = event_key(None, None)
    token = encoder.encode("User", k, row)
    (jwk,) = encoder.jwks()["keys"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": jwk["kid"], "typ": "secevent+jwt"}
    members = ("e", "kty", "n") if alg == "RS256" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":")).encode()
    thumb = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    assert jwk["kid"] == thumb  # RFC 7638
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg], audience="app")
    assert parse_jti(claims["jti"]) == ("User", k)
    assert claims["sub_id"] == {"format": "scim", "uri": "/Users/u1"}
    assert claims["txn"] == "t1" and claims["iss"] == "https://iss"


def test_unsigned_sets_are_unsecured_jwts_and_need_the_opt_in() -> None:
    with pytest.raises(EventConfigError, match="SIGNING_KEY"):
        SetEncoder(issuer="i")
    token = SetEncoder(issuer="i", unsigned=True).encode(
        "Group", event_key(None, None), {"id": "g", "events": {DELETE: {}}}
    )
    head, payload, signature = token.split(".")
    assert signature == ""
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {
        "typ": "secevent+jwt",
        "alg": "none",
    }
    assert json.loads(base64.urlsafe_b64decode(payload + "=="))["sub_id"]["uri"] == "/Groups/g"


@pytest.mark.parametrize(
    "pem", ["not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"]
)
def test_a_signing_key_that_is_not_one_is_a_configuration_error(pem: str) -> None:
    with pytest.raises(EventConfigError, match="PEM"):
        SetEncoder(issuer="i", signing_key=pem)


def test_a_weak_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(EventConfigError, match="2048"):
        SetEncoder(issuer="i", signing_key=_pem(small))
