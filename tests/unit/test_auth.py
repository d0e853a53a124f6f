"""Bearer-token authentication (ENTRA.md "Transport and auth").

JWTs are signed with RSA keys generated here; their JWKS is served by a real HTTP server on
127.0.0.1 so the stdlib fetcher, the cache and the refetch-on-unknown-kid path run for real.
Entra-mode keys live at login.microsoftonline.com, which tests never reach: the fetcher sends
that one URL to a second loopback server instead (:func:`entra_fetcher`), still through the real
stdlib fetcher.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
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

from scim_core import auth as auth_module
from scim_core.auth import ENTRA_JWKS_URL, Authenticator, JwksCache, check_jwks_url, fetch_jwks
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
    body: bytes | None = None
    """Served instead of the JWKS built from ``keys`` (oversized or broken documents)."""
    location: str | None = None
    """Answer 302 to this URL instead of serving keys."""


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def keys() -> Keys:
    def new() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(signing=new(), other=new())


def serve_jwks(keys: list[dict[str, Any]]) -> tuple[JwksServer, Callable[[], None]]:
    """Start a loopback JWKS server; returns its state and a function that stops it."""
    state = JwksServer(keys=keys)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.served += 1
            if state.location is not None:
                self.send_response(302)
                self.send_header("Location", state.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.body if state.body is not None else json.dumps({"keys": state.keys})
            data = body.encode() if isinstance(body, str) else body
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval keeps shutdown() (and so each test's teardown) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/discovery/keys"

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return state, stop


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    """The OAuth issuer's key server: serves ``keys.signing`` as KID."""
    state, stop = serve_jwks([public_jwk(keys.signing, KID)])
    yield state
    stop()


@pytest.fixture
def entra_keys_server(keys: Keys) -> Iterator[JwksServer]:
    """Stands in for the tenant's Entra discovery keys: serves ``keys.other`` as KID."""
    state, stop = serve_jwks([public_jwk(keys.other, KID)])
    yield state
    stop()


def entra_fetcher(server: JwksServer) -> Callable[[str], Mapping[str, Any]]:
    """The real fetcher, with the tenant's Entra discovery URL pointed at ``server``."""
    entra_url = ENTRA_JWKS_URL.format(tenant=TENANT)

    def fetch(url: str) -> Mapping[str, Any]:
        return fetch_jwks(server.url if url == entra_url else url)

    return fetch


def authenticator(
    fetcher: Callable[[str], Mapping[str, Any]] | None = None, **app_settings: str
) -> Authenticator:
    return Authenticator.from_settings(Settings.from_env(app_settings), jwks_fetcher=fetcher)


@pytest.fixture
def oauth(jwks_server: JwksServer) -> Authenticator:
    """Client-credentials mode only."""
    return authenticator(
        SCIM_JWT_ISSUER=ISSUER, SCIM_JWT_AUDIENCE=AUDIENCE, SCIM_JWKS_URL=jwks_server.url
    )


@pytest.fixture
def entra(entra_keys_server: JwksServer) -> Authenticator:
    """Blank Secret Token (test-only) mode for TENANT; its keys are ``keys.other``."""
    return authenticator(entra_fetcher(entra_keys_server), SCIM_TEST_ONLY_ENTRA_TENANT_ID=TENANT)


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


# --- Blank Secret Token (Entra's own JWT, test only) ------------------------------------------


def test_entra_token_accepted_for_configured_tenant(entra: Authenticator, keys: Keys) -> None:
    """iss sts.windows.net/<tenant>/, aud 8adf8e6e-... accepted when the tenant is named."""
    principal = entra.authenticate(f"Bearer {entra_jwt(keys.other, appid='provisioning')}")
    assert (principal.kind, principal.tenant_id, principal.issuer) == ("jwt", TENANT, ENTRA_ISSUER)
    assert principal.client_id == "provisioning"


@pytest.mark.parametrize(
    ("build", "detail"),
    [
        (lambda k: entra_jwt(k.other, tenant=OTHER_TENANT), "issuer not accepted"),
        (lambda k: entra_jwt(k.other, tid=OTHER_TENANT), "tenant not accepted"),
        (lambda k: entra_jwt(k.other, aud=AUDIENCE), "audience not accepted"),
        (lambda k: entra_jwt(k.signing), "bad signature"),
    ],
    ids=["other-tenant", "tid-mismatch", "other-audience", "other-key"],
)
def test_entra_token_rejected(
    entra: Authenticator, keys: Keys, build: Callable[[Keys], str], detail: str
) -> None:
    """The provisioning audience is shared by every tenant: only the named tenant gets in."""
    assert_rejected(entra, f"Bearer {build(keys)}", detail)


@pytest.mark.parametrize(
    "oauth_settings",
    [False, True],
    ids=["static-only", "client-credentials-only"],
)
def test_entra_token_rejected_without_tenant_setting(
    jwks_server: JwksServer, entra_keys_server: JwksServer, keys: Keys, oauth_settings: bool
) -> None:
    """Test-only mode is off by default: without SCIM_TEST_ONLY_ENTRA_TENANT_ID an Entra
    provisioning token is refused and Entra's keys are never fetched."""
    app_settings = (
        {"SCIM_JWT_ISSUER": ISSUER, "SCIM_JWT_AUDIENCE": AUDIENCE, "SCIM_JWKS_URL": jwks_server.url}
        if oauth_settings
        else {"SCIM_BEARER_TOKEN": PRIMARY}
    )
    auth = authenticator(entra_fetcher(entra_keys_server), **app_settings)
    detail = "issuer not accepted" if oauth_settings else "invalid token"
    assert_rejected(auth, f"Bearer {entra_jwt(keys.other)}", detail)
    assert (jwks_server.served, entra_keys_server.served) == (0, 0)


def test_entra_keys_come_from_the_tenant_discovery_url(keys: Keys) -> None:
    """Entra-mode keys are always the tenant's Entra discovery keys (never SCIM_JWKS_URL)."""
    fetched: list[str] = []

    def fetcher(url: str) -> Mapping[str, Any]:
        fetched.append(url)
        return {"keys": [public_jwk(keys.other, KID)]}

    auth = authenticator(fetcher, SCIM_TEST_ONLY_ENTRA_TENANT_ID=TENANT)
    assert auth.authenticate(f"Bearer {entra_jwt(keys.other)}").tenant_id == TENANT
    assert fetched == [f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"]


def test_test_only_mode_logs_a_warning_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    """Turning the blank-token mode on is loud: one warning when the authenticator is built."""
    with caplog.at_level(logging.WARNING, logger=auth_module.__name__):
        authenticator(SCIM_TEST_ONLY_ENTRA_TENANT_ID=TENANT)
    (record,) = [r for r in caplog.records if r.name == auth_module.__name__]
    assert record.levelno == logging.WARNING
    assert "SCIM_TEST_ONLY_ENTRA_TENANT_ID" in record.getMessage()
    assert "testing only" in record.getMessage()


def test_no_warning_without_test_only_mode(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=auth_module.__name__):
        authenticator(SCIM_BEARER_TOKEN=PRIMARY)
    assert [r for r in caplog.records if r.name == auth_module.__name__] == []


def test_the_old_setting_name_no_longer_turns_the_mode_on(
    entra_keys_server: JwksServer, keys: Keys
) -> None:
    """SCIM_ENTRA_TENANT_ID (before the rename) is ignored: the mode stays off (fail closed)."""
    auth = authenticator(
        entra_fetcher(entra_keys_server), SCIM_BEARER_TOKEN=PRIMARY, SCIM_ENTRA_TENANT_ID=TENANT
    )
    assert_rejected(auth, f"Bearer {entra_jwt(keys.other)}", "invalid token")


# --- Key separation between the two JWT trust domains --------------------------------------


@pytest.fixture
def both_modes(jwks_server: JwksServer, entra_keys_server: JwksServer) -> Authenticator:
    """OAuth mode (keys.signing at jwks_server) and test-only Entra mode (keys.other at the
    Entra discovery URL), both with the same kid, as an attacker would arrange it."""
    return authenticator(
        entra_fetcher(entra_keys_server),
        SCIM_JWT_ISSUER=ISSUER,
        SCIM_JWT_AUDIENCE=AUDIENCE,
        SCIM_JWKS_URL=jwks_server.url,
        SCIM_TEST_ONLY_ENTRA_TENANT_ID=TENANT,
    )


def test_each_domain_accepts_tokens_signed_with_its_own_keys(
    both_modes: Authenticator, keys: Keys
) -> None:
    assert both_modes.authenticate(f"Bearer {make_jwt(keys.signing)}").issuer == ISSUER
    assert both_modes.authenticate(f"Bearer {entra_jwt(keys.other)}").issuer == ENTRA_ISSUER


@pytest.mark.parametrize(
    ("build", "fetched"),
    [(lambda k: entra_jwt(k.signing), (0, 1)), (lambda k: make_jwt(k.other), (1, 0))],
    ids=["entra-claims-signed-with-oauth-key", "oauth-claims-signed-with-entra-key"],
)
def test_a_key_of_one_domain_never_signs_for_the_other(
    both_modes: Authenticator,
    keys: Keys,
    jwks_server: JwksServer,
    entra_keys_server: JwksServer,
    build: Callable[[Keys], str],
    fetched: tuple[int, int],
) -> None:
    """Key confusion: whoever holds the OAuth issuer's signing key must not mint Entra tokens
    (and the reverse). Each profile verifies against its own JWKS only: the token's claims pick
    the profile, and only that profile's key server is asked (OAuth, Entra fetch counts)."""
    assert_rejected(both_modes, f"Bearer {build(keys)}", "bad signature")
    assert (jwks_server.served, entra_keys_server.served) == fetched


def test_a_jwks_url_without_oauth_mode_is_a_startup_error() -> None:
    """SCIM_JWKS_URL alone used to feed Entra mode its keys; now it only belongs to OAuth mode,
    so setting it alone is a configuration error, not a silent key override."""
    with pytest.raises(ValueError, match="SCIM_JWT_ISSUER, SCIM_JWT_AUDIENCE"):
        authenticator(
            SCIM_JWKS_URL="https://keys.example/jwks", SCIM_TEST_ONLY_ENTRA_TENANT_ID=TENANT
        )


# --- JWKS fetching: https only, size-capped --------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://login.example.test/keys",
        "http://127.0.0.1:8080/keys",
        "http://[::1]:8080/keys",
        "http://localhost/keys",
    ],
    ids=["https", "loopback-ipv4", "loopback-ipv6", "localhost"],
)
def test_jwks_url_accepted(url: str) -> None:
    assert check_jwks_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://login.example.test/keys",
        "http://127.0.0.1.example.test/keys",
        "ftp://login.example.test/keys",
        "file:///etc/passwd",
        "https:///keys",
        "login.example.test/keys",
    ],
    ids=["plain-http", "loopback-lookalike", "ftp", "file", "no-host", "no-scheme"],
)
def test_jwks_url_refused(url: str) -> None:
    """Plain http lets anyone on the path swap the keys; other schemes read local files."""
    with pytest.raises(ValueError, match="JWKS URL"):
        check_jwks_url(url)


def test_insecure_jwks_url_is_a_startup_error() -> None:
    with pytest.raises(ValueError, match="must use https"):
        authenticator(
            SCIM_JWT_ISSUER=ISSUER,
            SCIM_JWT_AUDIENCE=AUDIENCE,
            SCIM_JWKS_URL="http://login.example.test/keys",
        )


def test_fetch_refuses_a_redirect_to_plain_http(jwks_server: JwksServer) -> None:
    """A redirect must not downgrade the fetch: the target is checked before it is followed."""
    jwks_server.location = "http://keys.example.test/jwks"
    with pytest.raises(ValueError, match="must use https"):
        fetch_jwks(jwks_server.url)
    assert jwks_server.served == 1


def test_fetch_follows_a_redirect_to_an_allowed_url(keys: Keys) -> None:
    target, stop_target = serve_jwks([public_jwk(keys.signing, KID)])
    source, stop_source = serve_jwks([])
    try:
        source.location = target.url
        assert fetch_jwks(source.url)["keys"][0]["kid"] == KID
        assert (source.served, target.served) == (1, 1)
    finally:
        stop_source()
        stop_target()


def test_fetch_refuses_an_oversized_document(jwks_server: JwksServer) -> None:
    """The body is read up to the cap and no further; a larger document is an error."""
    padding = "x" * auth_module.MAX_JWKS_BYTES
    jwks_server.body = json.dumps({"keys": [], "padding": padding}).encode()
    with pytest.raises(ValueError, match="exceeds"):
        fetch_jwks(jwks_server.url)


def test_oversized_jwks_means_no_keys(
    oauth: Authenticator, keys: Keys, jwks_server: JwksServer
) -> None:
    """Through the authenticator: an oversized JWKS is a failed fetch (503), never keys."""
    jwks_server.body = b"[" + b"0," * auth_module.MAX_JWKS_BYTES + b"0]"
    with pytest.raises(ServiceUnavailable):
        oauth.authenticate(f"Bearer {make_jwt(keys.signing)}")


def test_fetch_accepts_a_document_at_the_cap(jwks_server: JwksServer) -> None:
    document = {"keys": [], "padding": ""}
    room = auth_module.MAX_JWKS_BYTES - len(json.dumps(document))
    jwks_server.body = json.dumps({**document, "padding": "x" * room}).encode()
    assert len(jwks_server.body) == auth_module.MAX_JWKS_BYTES
    assert fetch_jwks(jwks_server.url)["keys"] == []


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
