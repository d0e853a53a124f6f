"""Bearer-token authentication (ENTRA.md "Transport and auth").

JWTs are signed with RSA keys generated here; their JWKS is served by a real HTTP server on
127.0.0.1 so the stdlib fetcher, the cache and the refetch-on-unknown-kid path run for real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scim_core.auth import Authenticator, JwksCache
from scim_core.errors import ServiceUnavailable, Unauthorized
from scim_core.settings import ENTRA_PROVISIONING_AUDIENCE, Settings

PRIMARY = "primary-secret-token-0123456789abcdef"
SECONDARY = "secondary-secret-token-fedcba9876543210"
ISSUER = "https://login.example.test/oauth2/"
AUDIENCE = "api://scim-endpoint"
TENANT = "11111111-2222-3333-4444-555555555555"
OTHER_TENANT = "99999999-8888-7777-6666-555555555555"
ENTRA_ISSUER = f"https://sts.windows.net/{TENANT}/"
KID = "key-1"


@dataclass(frozen=True)
class Keys:
    signing: rsa.RSAPrivateKey
    other: rsa.RSAPrivateKey


@dataclass
class JwksServer:
    """A JWKS endpoint on loopback: ``keys`` and ``status`` can be changed mid-test."""

    keys: list[dict[str, Any]]
    url: str = ""
    status: int = 200
    served: int = 0
    paths: list[str] = field(default_factory=list)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def keys() -> Keys:
    def new() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(signing=new(), other=new())


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    state = JwksServer(keys=[public_jwk(keys.signing, KID)])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.served += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval keeps shutdown() (and so each test's teardown) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/discovery/keys"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def authenticator(**app_settings: str) -> Authenticator:
    return Authenticator.from_settings(Settings.from_env(app_settings))


@pytest.fixture
def oauth(jwks_server: JwksServer) -> Authenticator:
    """Client-credentials mode only."""
    return authenticator(
        SCIM_JWT_ISSUER=ISSUER, SCIM_JWT_AUDIENCE=AUDIENCE, SCIM_JWKS_URL=jwks_server.url
    )


@pytest.fixture
def entra(jwks_server: JwksServer) -> Authenticator:
    """Blank Secret Token mode for TENANT, keys from the loopback server."""
    return authenticator(SCIM_ENTRA_TENANT_ID=TENANT, SCIM_JWKS_URL=jwks_server.url)


def make_jwt(key: rsa.RSAPrivateKey, *, kid: str | None = KID, **claims: Any) -> str:
    """An RS256 client-credentials token; a claim passed as None is left out."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "app-object-id", "azp": "app-client-id"}
    body |= {"iat": now, "nbf": now, "exp": now + 3600} | claims
    headers = {"kid": kid} if kid else {}
    payload = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def entra_jwt(key: rsa.RSAPrivateKey, tenant: str = TENANT, **claims: Any) -> str:
    """Shaped like the provisioning service's own token (v1 issuer, fixed audience, tid)."""
    iss = f"https://sts.windows.net/{tenant}/"
    aud = ENTRA_PROVISIONING_AUDIENCE
    return make_jwt(key, **({"iss": iss, "aud": aud, "tid": tenant, "azp": None} | claims))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: Mapping[str, Any], signer: Callable[[bytes], bytes]) -> str:
    """A token PyJWT refuses to build (alg none, HS256 keyed with a public key)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 3600}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(signer(signing_input.encode()))}"


def hs256_with_public_key(keys: Keys) -> str:
    pem = keys.signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    return hand_made(header, lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def tampered(keys: Keys) -> str:
    header, _, signature = make_jwt(keys.signing).split(".")
    payload = make_jwt(keys.signing, sub="someone-else").split(".")[1]
    return f"{header}.{payload}.{signature}"


def assert_rejected(auth: Authenticator, header: str | None, detail: str) -> Unauthorized:
    """401 with ``detail`` in its message, and no part of the credential echoed anywhere."""
    with pytest.raises(Unauthorized) as caught:
        auth.authenticate(header)
    assert detail in caught.value.detail
    rendered = json.dumps(caught.value.to_body()) + str(caught.value)
    token = (header or "").partition(" ")[2].strip()
    for secret in [token, *token.split(".")]:
        assert len(secret) < 6 or secret not in rendered
    return caught.value


# --- Secret Token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        (f"Bearer {PRIMARY}", "static-token-1"),
        (f"Bearer {SECONDARY}", "static-token-2"),
        (f"bearer {PRIMARY}", "static-token-1"),
        (f"BEARER  {SECONDARY} ", "static-token-2"),
    ],
    ids=["primary", "secondary", "lower-case-scheme", "upper-case-scheme-extra-space"],
)
def test_static_tokens_accepted(header: str, subject: str) -> None:
    """Both tokens work at once so the Secret Token can be rotated; scheme is case-insensitive."""
    auth = authenticator(SCIM_BEARER_TOKEN=PRIMARY, SCIM_BEARER_TOKEN_SECONDARY=SECONDARY)
    principal = auth.authenticate(header)
    assert (principal.kind, principal.subject) == ("token", subject)
    assert PRIMARY not in repr(principal) and SECONDARY not in repr(principal)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer", "missing bearer token"),
        ("Bearer    ", "missing bearer token"),
        (f"Basic {PRIMARY}", "scheme must be Bearer"),
        (f"Token {PRIMARY}", "scheme must be Bearer"),
        (PRIMARY, "scheme must be Bearer"),
        ("Bearer wrong-token-of-some-length", "invalid token"),
        (f"Bearer {PRIMARY}x", "invalid token"),
        (f"Bearer {PRIMARY[:-1]}", "invalid token"),
    ],
    ids=[
        "no-header", "empty", "scheme-only", "blank-token", "basic-scheme", "token-scheme",
        "no-scheme", "wrong-token", "token-plus-char", "token-prefix",
    ],
)  # fmt: skip
def test_static_token_rejected(header: str | None, detail: str) -> None:
    """Missing or wrong token: 401 (ENTRA.md), never echoing what was sent."""
    auth = authenticator(SCIM_BEARER_TOKEN=PRIMARY, SCIM_BEARER_TOKEN_SECONDARY=SECONDARY)
    error = assert_rejected(auth, header, detail)
    assert error.headers()["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [None, f"Bearer {PRIMARY}", "Bearer aaaa.bbbb.cccc"],
    ids=["no-header", "static-token", "jwt-shaped"],
)
def test_nothing_configured_rejects_everything(header: str | None) -> None:
    """Fail closed: a deployment without credentials must not be an open directory."""
    assert_rejected(authenticator(), header, "no credentials configured")


# --- OAuth client credentials ----------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    # "exp" given as seconds relative to now, resolved when the test runs (not at collection).
    [{}, {"exp": -30}, {"aud": ["other", AUDIENCE]}, {"nbf": None}],
    ids=["valid", "expired-within-leeway", "audience-list", "no-nbf"],
)
def test_client_credentials_jwt_accepted(
    oauth: Authenticator, keys: Keys, claims: dict[str, Any]
) -> None:
    """A JWT from the admin's token endpoint: issuer, audience, JWKS signature, expiry check out."""
    if "exp" in claims:
        claims = {**claims, "exp": int(time.time()) + claims["exp"]}
    principal = oauth.authenticate(f"Bearer {make_jwt(keys.signing, **claims)}")
    assert principal.kind == "jwt"
    assert (principal.subject, principal.client_id, principal.issuer) == (
        "app-object-id", "app-client-id", ISSUER
    )  # fmt: skip


@pytest.mark.parametrize(
    ("build", "detail"),
    [
        (lambda k: make_jwt(k.signing, iss="https://evil.example/"), "issuer not accepted"),
        (lambda k: make_jwt(k.signing, aud="api://other"), "audience not accepted"),
        (lambda k: make_jwt(k.signing, exp=int(time.time()) - 120), "token expired"),
        (lambda k: make_jwt(k.signing, nbf=int(time.time()) + 300), "not yet valid"),
        (lambda k: make_jwt(k.signing, exp=None), "missing required claim 'exp'"),
        (lambda k: make_jwt(k.other), "bad signature"),
        (tampered, "bad signature"),
        (lambda k: make_jwt(k.signing, kid=None), "no key id"),
        (lambda k: hand_made({"alg": "none", "kid": KID}, lambda _: b""), "algorithm not accepted"),
        (hs256_with_public_key, "algorithm not accepted"),
        (lambda k: "eyJhbGciOi.eyJpc3MiOi.c2lnbmF0dXJl", "malformed"),
    ],
    ids=[
        "wrong-iss", "wrong-aud", "expired", "not-yet-valid", "no-exp", "other-key",
        "tampered-payload", "no-kid", "alg-none", "hs256-public-key-as-secret", "garbage",
    ],
)  # fmt: skip
def test_client_credentials_jwt_rejected(
    oauth: Authenticator, keys: Keys, build: Callable[[Keys], str], detail: str
) -> None:
    """Validate a JWT by issuer, audience, signature (JWKS), expiry (ENTRA.md auth mode 2)."""
    assert_rejected(oauth, f"Bearer {build(keys)}", detail)


def test_unknown_kid_refetches_once_then_rejects(
    oauth: Authenticator, keys: Keys, jwks_server: JwksServer
) -> None:
    """An unknown kid triggers one JWKS refetch; repeats within 5 minutes do not hammer it."""
    oauth.authenticate(f"Bearer {make_jwt(keys.signing)}")
    assert jwks_server.served == 1
    stranger = f"Bearer {make_jwt(keys.other, kid='unknown')}"
    assert_rejected(oauth, stranger, "unknown signing key")
    assert jwks_server.served == 2
    assert_rejected(oauth, stranger, "unknown signing key")
    assert jwks_server.served == 2


def test_rotated_key_is_picked_up_by_refetch(
    oauth: Authenticator, keys: Keys, jwks_server: JwksServer
) -> None:
    """Key rollover at the issuer: a new kid is fetched on first sight, not after the TTL."""
    oauth.authenticate(f"Bearer {make_jwt(keys.signing)}")
    jwks_server.keys.append(public_jwk(keys.other, "key-2"))
    assert oauth.authenticate(f"Bearer {make_jwt(keys.other, kid='key-2')}").kind == "jwt"
    assert jwks_server.served == 2


def test_jwks_is_cached(oauth: Authenticator, keys: Keys, jwks_server: JwksServer) -> None:
    """Keys are fetched once, not per request (every SCIM call carries a token)."""
    for _ in range(3):
        oauth.authenticate(f"Bearer {make_jwt(keys.signing)}")
    assert jwks_server.served == 1


def test_key_with_other_alg_rejected(
    oauth: Authenticator, keys: Keys, jwks_server: JwksServer
) -> None:
    """A JWK pinned to one algorithm (RFC 7517 §4.4) is not used to verify another."""
    jwks_server.keys[0]["alg"] = "RS512"
    assert_rejected(oauth, f"Bearer {make_jwt(keys.signing)}", "does not match the key")


def test_jwks_unreachable_is_503(oauth: Authenticator, keys: Keys, jwks_server: JwksServer) -> None:
    """No keys ever loaded: a transient 503 with Retry-After, not a 401 that blames the token."""
    jwks_server.status = 500
    with pytest.raises(ServiceUnavailable) as caught:
        oauth.authenticate(f"Bearer {make_jwt(keys.signing)}")
    assert caught.value.retry_after and caught.value.headers()["Retry-After"]


def test_half_configured_oauth_fails_at_startup() -> None:
    """An issuer without audience/JWKS is a deployment error, not silently disabled auth."""
    with pytest.raises(ValueError, match="SCIM_JWT_AUDIENCE, SCIM_JWKS_URL"):
        authenticator(SCIM_JWT_ISSUER=ISSUER)


# --- Blank Secret Token (Entra's own JWT) ----------------------------------------------------


def test_entra_token_accepted_for_configured_tenant(entra: Authenticator, keys: Keys) -> None:
    """iss sts.windows.net/<tenant>/, aud 8adf8e6e-... accepted when the tenant is named."""
    principal = entra.authenticate(f"Bearer {entra_jwt(keys.signing, appid='provisioning')}")
    assert (principal.kind, principal.tenant_id, principal.issuer) == ("jwt", TENANT, ENTRA_ISSUER)
    assert principal.client_id == "provisioning"


@pytest.mark.parametrize(
    ("build", "detail"),
    [
        (lambda k: entra_jwt(k.signing, tenant=OTHER_TENANT), "issuer not accepted"),
        (lambda k: entra_jwt(k.signing, tid=OTHER_TENANT), "tenant not accepted"),
        (lambda k: entra_jwt(k.signing, aud=AUDIENCE), "audience not accepted"),
        (lambda k: entra_jwt(k.other), "bad signature"),
    ],
    ids=["other-tenant", "tid-mismatch", "other-audience", "other-key"],
)
def test_entra_token_rejected(
    entra: Authenticator, keys: Keys, build: Callable[[Keys], str], detail: str
) -> None:
    """The provisioning audience is shared by every tenant: only the named tenant gets in."""
    assert_rejected(entra, f"Bearer {build(keys)}", detail)


@pytest.mark.parametrize(
    ("app_settings", "detail"),
    [
        ({"SCIM_BEARER_TOKEN": PRIMARY}, "invalid token"),
        ({"SCIM_JWT_ISSUER": ISSUER, "SCIM_JWT_AUDIENCE": AUDIENCE}, "issuer not accepted"),
    ],
    ids=["static-only", "client-credentials-only"],
)
def test_entra_token_rejected_without_tenant_setting(
    jwks_server: JwksServer, keys: Keys, app_settings: dict[str, str], detail: str
) -> None:
    """Microsoft calls the blank token "for testing": off unless SCIM_ENTRA_TENANT_ID is set."""
    auth = authenticator(SCIM_JWKS_URL=jwks_server.url, **app_settings)
    assert_rejected(auth, f"Bearer {entra_jwt(keys.signing)}", detail)
    assert jwks_server.served == 0


def test_entra_keys_default_to_tenant_discovery_url(keys: Keys) -> None:
    """Without SCIM_JWKS_URL, Entra keys come from the tenant's discovery endpoint."""
    fetched: list[str] = []

    def fetcher(url: str) -> Mapping[str, Any]:
        fetched.append(url)
        return {"keys": [public_jwk(keys.signing, KID)]}

    settings = Settings.from_env({"SCIM_ENTRA_TENANT_ID": TENANT})
    auth = Authenticator.from_settings(settings, jwks_fetcher=fetcher)
    assert auth.authenticate(f"Bearer {entra_jwt(keys.signing)}").tenant_id == TENANT
    assert fetched == [f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"]


# --- JwksCache ---------------------------------------------------------------------------------


class FakeJwks:
    """A fetcher and a clock under test control."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.calls = 0
        self.fail = False

    def clock(self) -> float:
        return self.now

    def fetch(self, url: str) -> Mapping[str, Any]:
        self.calls += 1
        if self.fail:
            raise OSError("connection refused")
        return {"keys": [{"kty": "RSA", "kid": KID, "n": "AQAB", "e": "AQAB"}]}


@pytest.fixture
def fake() -> FakeJwks:
    return FakeJwks()


def cache(fake: FakeJwks) -> JwksCache:
    return JwksCache("https://keys.test", fake.fetch, ttl=3600, min_refetch=300, clock=fake.clock)


def test_cache_refreshes_after_ttl(fake: FakeJwks) -> None:
    """Keys are re-read hourly so a retired key stops being trusted."""
    jwks = cache(fake)
    jwks.get_key(KID)
    fake.now += 3599
    jwks.get_key(KID)
    assert fake.calls == 1
    fake.now += 1
    jwks.get_key(KID)
    assert fake.calls == 2


def test_cache_serves_stale_keys_when_refresh_fails(fake: FakeJwks) -> None:
    """A JWKS outage after the first load does not lock Entra out."""
    jwks = cache(fake)
    jwks.get_key(KID)
    fake.now, fake.fail = fake.now + 7200, True
    assert jwks.get_key(KID)["kid"] == KID
    assert fake.calls == 2


def test_cache_backs_off_after_failed_first_load(fake: FakeJwks) -> None:
    """Never loaded: 503 with Retry-After, and no refetch until that time has passed."""
    jwks, fake.fail = cache(fake), True
    with pytest.raises(ServiceUnavailable) as caught:
        jwks.get_key(KID)
    assert caught.value.retry_after == 30
    fake.now += 10
    with pytest.raises(ServiceUnavailable):
        jwks.get_key(KID)
    assert fake.calls == 1
    fake.now, fake.fail = fake.now + 20, False
    assert jwks.get_key(KID)["kid"] == KID
    assert fake.calls == 2
