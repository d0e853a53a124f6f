"""An event row as a Security Event Token (RFC 8417), signed or unsecured.

Claims (RFC 8417 §2.2, RFC 9967 §2):

- ``jti``: the row's identity, ``U<key>`` or ``G<key>`` (the partition and the row's key), so an
  ``ack`` names the row to remove without any lookup; unique because keys are.
- ``iat``: when the change committed (the key's time), seconds; ``toe`` (time of event) the
  same. Redelivery does not change either: the same claims are sent again (the payload byte
  for byte; an ES256 signature is randomised, so the signature part may differ).
- ``iss`` / ``aud``: ``SCIM_EVENTS_ISSUER`` / ``SCIM_EVENTS_AUDIENCE``.
- ``txn`` (RFC 8417 §2.2): one per SCIM request, shared by the events of one Bulk request.
- ``sub_id``: RFC 9967 §2.1's subject, ``{"format": "scim", "uri": "/Users/<id>"}`` (and the
  resource's ``externalId`` when it has one).
- ``events``: RFC 9967 §2.4's URIs and payloads (scim_core/events/record.py).
- ``scimfunc.origin``: a private claim (RFC 7519 §4.3): ``provisioning`` (Entra's credential),
  ``app`` (the app's ``app:write`` credential) or ``enrichment`` (the Graph timer).

Signing (RFC 8417 §5.1, RFC 7515): with ``SCIM_EVENTS_SIGNING_KEY``, a PEM private key the
operator supplies (Key Vault in Azure): RSA keys sign RS256, P-256 keys ES256; the header
carries ``typ: secevent+jwt`` (RFC 8417 §2.3) and ``kid``. The receiver gets the public key as a
JWKS from ``GET /Events/keys`` (with its events credential) or from the operator. With
``SCIM_EVENTS_UNSIGNED=true`` instead, SETs are unsecured JWTs (``alg: none``, RFC 7519 §6),
acceptable only because the receiver fetches them over TLS with its own credential (poll) or
is reached over TLS with a bearer token (push): the channel authenticates the transmitter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

#: ``jti`` = partition letter + outbox key (``<stamp>|<12 hex>``, store/protocol.event_key).
_JTI = re.compile(r"^([UG])(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\|[0-9a-f]{12})$")
_TYPES = {"U": "User", "G": "Group"}
_PATHS = {"User": "/Users/", "Group": "/Groups/"}
SET_TYPE = "secevent+jwt"
ORIGIN_CLAIM = "scimfunc.origin"


class EventConfigError(ValueError):
    """The event settings cannot sign or send SETs."""


def new_signing_key() -> str:
    """A fresh P-256 private key as unencrypted PKCS#8 PEM: what ``SCIM_EVENTS_SIGNING_KEY``
    holds (the deploy tool makes one per instance; SETs are then ES256, RFC 7518 §3.4)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def jti_of(rtype: str, key: str) -> str:
    return rtype[0] + key


def parse_jti(jti: object) -> tuple[str, str] | None:
    """``(rtype, key)`` of a ``jti`` this service issued, else None."""
    match = _JTI.match(jti) if isinstance(jti, str) else None
    return (_TYPES[match.group(1)], match.group(2)) if match else None


def issued_at(key: str) -> int:
    when = key.partition("|")[0]
    return int(datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp())


class SetEncoder:
    """Turns event rows into SETs (see the module docstring)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | None = None,
        signing_key: str | None = None,
        kid: str | None = None,
        unsigned: bool = False,
    ) -> None:
        if signing_key is None and not unsigned:
            raise EventConfigError(
                "events need SCIM_EVENTS_SIGNING_KEY (a PEM private key) or, for a receiver "
                "reached over an authenticated channel, SCIM_EVENTS_UNSIGNED=true"
            )
        self.issuer, self.audience = issuer, audience
        self._key: Any = None
        self.alg = "none"
        self.kid: str | None = None
        self._public_jwk: dict[str, Any] | None = None
        if signing_key is not None:
            self._load(signing_key, kid)

    @classmethod
    def from_settings(cls, settings: Any) -> SetEncoder:
        unsigned = str(settings.events_unsigned).strip().lower()
        if unsigned not in ("true", "false"):
            raise EventConfigError(f"SCIM_EVENTS_UNSIGNED is true or false, not {unsigned!r}")
        return cls(
            issuer=settings.events_issuer,
            audience=settings.events_audience,
            signing_key=settings.events_signing_key,
            kid=settings.events_signing_kid,
            unsigned=unsigned == "true" and not settings.events_signing_key,
        )

    def _load(self, pem: str, kid: str | None) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        text = pem.replace("\\n", "\n").strip().encode()
        try:
            key = load_pem_private_key(text, password=None)
        except (ValueError, TypeError):
            raise EventConfigError(
                "SCIM_EVENTS_SIGNING_KEY is not an unencrypted PEM private key"
            ) from None
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            self.alg = "RS256"
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            members: tuple[str, ...] = ("e", "kty", "n")
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            self.alg = "ES256"
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            members = ("crv", "kty", "x", "y")
        else:
            raise EventConfigError(
                "SCIM_EVENTS_SIGNING_KEY must be an RSA key of 2048 bits or more, or a P-256 key"
            )
        self._key = key
        # RFC 7638 §3: the thumbprint of the required members, in order, without whitespace.
        canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).digest()
        self.kid = kid or base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        self._public_jwk = {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWK Set (RFC 7517 §5); empty when SETs are unsigned."""
        return {"keys": [self._public_jwk] if self._public_jwk else []}

    def claims(self, rtype: str, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
        when = issued_at(key)
        subject: dict[str, Any] = {"format": "scim", "uri": _PATHS[rtype] + str(body["id"])}
        if isinstance(body.get("externalId"), str):
            subject["externalId"] = body["externalId"]
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "jti": jti_of(rtype, key),
            "iat": when,
            "toe": when,
            "sub_id": subject,
            "events": body["events"],
            ORIGIN_CLAIM: body.get("origin", "provisioning"),
        }
        if self.audience:
            claims["aud"] = self.audience
        if body.get("txn"):
            claims["txn"] = body["txn"]
        return claims

    def encode(self, rtype: str, key: str, body: Mapping[str, Any]) -> str:
        claims = self.claims(rtype, key, body)
        if self._key is None:
            header = {"typ": SET_TYPE, "alg": "none"}
            return f"{_b64(header)}.{_b64(claims)}."
        import jwt

        headers = {"typ": SET_TYPE, "kid": self.kid}
        return jwt.encode(claims, self._key, algorithm=self.alg, headers=headers)


def _b64(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
