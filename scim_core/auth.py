"""Bearer-token authentication (ENTRA.md "Transport and auth").

Entra sends ``Authorization: Bearer <token>`` on every request. Three modes, any combination:

1. **Secret Token** — static tokens (primary + secondary, so a token can be rotated without
   downtime), compared in constant time.
2. **OAuth client credentials** — a JWT checked against ``SCIM_JWT_ISSUER``,
   ``SCIM_JWT_AUDIENCE`` and the keys at ``SCIM_JWKS_URL``.
3. **Blank Secret Token, test only** — Entra's own provisioning JWT, accepted only for the
   tenant named in ``SCIM_TEST_ONLY_ENTRA_TENANT_ID``. Its audience is the same for every custom
   app of that tenant, so any enterprise app there gets in; Microsoft says this token "should
   only be used for testing" (Learn, "Tutorial: Develop a sample SCIM endpoint in Microsoft
   Entra ID"). Off by default; a warning is logged when the authenticator is built with it on.

Each JWT mode is its own trust domain with its own keys: OAuth tokens are verified only with the
keys at ``SCIM_JWKS_URL``, Entra tokens only with the tenant's Entra discovery keys, so a key
of one domain never signs for the other. JWKS are fetched over https only (http to the loopback
address is allowed, for tests) and the document is size-capped.

The line-of-business app has credentials of its own (docs/app-guide.md), never Entra's: static
tokens (``SCIM_APP_TOKEN`` + ``_SECONDARY``) with the scopes of ``SCIM_APP_SCOPES``, and an
**app-role mode** for apps running in Azure: an Entra-issued JWT of the app's managed identity or
app registration (``SCIM_APP_JWT_ISSUER``, ``SCIM_APP_JWT_AUDIENCE``, ``SCIM_APP_JWKS_URL``)
whose ``roles`` claim carries the scopes. That mode is a trust domain of its own too, with its
own key cache; a token whose issuer and audience fit two profiles is refused rather than
guessed, and a configuration in which an app profile and an Entra profile share issuer and
audience is a start-up error (an app token must never pass for Entra's). The authenticator
only says who the caller is (:class:`~scim_core.principal.Principal`); what it may do is
:mod:`scim_core.access`.

With nothing configured every request is rejected (fail closed). Details never echo the token.
PyJWT is imported inside the JWT path only, so static-token cold starts do not pay for it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scim_core.errors import ServiceUnavailable, Unauthorized
from scim_core.principal import Principal, parse_scopes, scopes_of_roles

if TYPE_CHECKING:
    from scim_core.settings import Settings

__all__ = [
    "Authenticator",
    "JwksCache",
    "JwksFetcher",
    "Principal",
    "check_jwks_url",
    "fetch_jwks",
]

logger = logging.getLogger(__name__)

#: Fetches a JWKS document (parsed JSON) from a URL; raises on any failure.
JwksFetcher = Callable[[str], Mapping[str, Any]]

ENTRA_ISSUER = "https://sts.windows.net/{tenant}/"
ENTRA_JWKS_URL = "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
#: Asymmetric algorithms only: "none" and HS* (e.g. HS256 keyed with the public key) never pass.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 60
#: Largest JWKS document read. Entra's discovery keys are a few KB; a signing-key set 64 times
#: that is no JWKS but a misconfiguration or an attack on memory.
MAX_JWKS_BYTES = 256 * 1024
#: Hosts plain http is allowed for: the loopback address (tests, a local key server). Anything
#: else must be https, or a network attacker could swap the keys and sign tokens of their own.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


def check_jwks_url(url: str) -> str:
    """``url`` if keys may be fetched from it: https, or http to the loopback address only.

    Raises ValueError otherwise (a configuration error, reported at start-up)."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"JWKS URL {url!r} has no host")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url
    raise ValueError(f"JWKS URL {url!r} must use https (plain http only to the loopback address)")


def fetch_jwks(url: str, timeout: float = 5.0) -> Mapping[str, Any]:
    """Default fetcher: GET ``url`` with the stdlib (imported lazily: it is cold-start weight).

    The URL (and every redirect target) must pass :func:`check_jwks_url`; at most
    ``MAX_JWKS_BYTES`` are read."""
    import json
    import urllib.request

    class _CheckedRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect must not downgrade the fetch to plain http (or another scheme).
        def redirect_request(
            self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
        ) -> Any:
            return super().redirect_request(req, fp, code, msg, headers, check_jwks_url(newurl))

    request = urllib.request.Request(check_jwks_url(url), headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(_CheckedRedirect())
    with opener.open(request, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS document of {declared} bytes exceeds {MAX_JWKS_BYTES}")
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"JWKS document exceeds {MAX_JWKS_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TypeError("JWKS document has no 'keys' list")
    return document


class JwksCache:
    """Signing keys by ``kid``, refreshed after ``ttl`` and on an unknown ``kid``.

    Unknown-``kid`` refetches (an issuer's key rollover) happen at most once per ``min_refetch``
    seconds, so tokens with made-up ``kid`` values cannot turn us into a JWKS hammer. After a
    failed fetch nothing is retried for ``retry_after`` seconds; the keys already held are kept.
    """

    def __init__(
        self,
        url: str,
        fetcher: JwksFetcher | None = None,
        *,
        ttl: float = 3600.0,
        min_refetch: float = 300.0,
        retry_after: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetcher or fetch_jwks
        self._ttl, self._min_refetch, self._retry_after = ttl, min_refetch, retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Mapping[str, Any]] | None = None
        self._fetched_at = 0.0
        self._retry_at = 0.0  # no fetch at all before this (failure back-off)
        self._refetch_at = 0.0  # no unknown-kid refetch before this

    def get_key(self, kid: str) -> Mapping[str, Any]:
        """The JWK with this ``kid``; Unauthorized if unknown, ServiceUnavailable if no keys."""
        with self._lock:
            now = self._clock()
            expired = self._keys is None or now - self._fetched_at >= self._ttl
            unknown = self._keys is not None and kid not in self._keys
            if now >= self._retry_at and (expired or (unknown and now >= self._refetch_at)):
                if not expired:
                    self._refetch_at = now + self._min_refetch
                self._refresh(now)
            if self._keys is None:
                # 503, not 401: the caller's credential may be fine; we could not load the keys
                # to tell. A 401 would count toward Entra quarantining the job and point the
                # admin at the wrong problem; 503 + Retry-After marks it transient.
                wait = max(1, round(self._retry_at - now))
                raise ServiceUnavailable("token signing keys are unavailable", retry_after=wait)
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("invalid token: unknown signing key")
        return key

    def _refresh(self, now: float) -> None:
        try:
            document = self._fetch(self.url)
            keys = {
                str(jwk["kid"]): jwk
                for jwk in document["keys"]
                if isinstance(jwk, Mapping)
                and jwk.get("kid")
                and jwk.get("kty") in _SIGNING_KEY_TYPES
                and jwk.get("use", "sig") == "sig"
            }
        except Exception:  # any fetch/parse failure: keep the old keys, back off
            logger.warning("JWKS fetch from %s failed", self.url, exc_info=True)
            self._retry_at = now + self._retry_after
            return
        self._keys, self._fetched_at = keys, now


@dataclass(frozen=True)
class _JwtProfile:
    """One accepted kind of JWT: who issues it, for whom, and where its keys are."""

    issuer: str
    audience: str
    jwks: JwksCache
    tenant_id: str | None = None
    """Entra mode: the ``tid`` claim, when present, must equal this."""
    app: bool = False
    """App-role mode: the caller is the line-of-business app; its ``roles`` are its scopes."""


class Authenticator:
    """Checks the ``Authorization`` header of each request. Build once per process."""

    def __init__(
        self,
        static_tokens: list[str],
        profiles: list[_JwtProfile],
        app_tokens: list[str] | None = None,
        app_scopes: frozenset[str] = frozenset(),
    ) -> None:
        app_tokens = app_tokens or []
        if set(static_tokens) & set(app_tokens):
            # Which rights would such a token carry? Neither answer is safe.
            raise ValueError("an app token (SCIM_APP_TOKEN*) must differ from Entra's tokens")
        for app in (p for p in profiles if p.app):
            for other in (p for p in profiles if not p.app):
                if (app.issuer, app.audience) == (other.issuer, other.audience):
                    raise ValueError(
                        "app-role mode (SCIM_APP_JWT_ISSUER/AUDIENCE) must not accept the same "
                        "issuer and audience as an Entra mode: an app token would pass for "
                        "Entra's"
                    )
        # Compare sha256 digests: equal length whatever the token length, so nothing leaks it.
        # Entra's tokens first, then the app's: one list, so every token is compared to all.
        self._digests = [hashlib.sha256(t.encode()).digest() for t in static_tokens + app_tokens]
        self._entra_tokens = len(static_tokens)
        self._app_scopes = app_scopes
        self._profiles = profiles

    @classmethod
    def from_settings(
        cls, settings: Settings, jwks_fetcher: JwksFetcher | None = None
    ) -> Authenticator:
        """Raises ValueError if a JWT mode is half configured or its JWKS URL is not https
        (better than silently off, or keys an attacker on the network could swap).

        Each profile gets its own key cache: the OAuth issuer's keys (``SCIM_JWKS_URL``) never
        verify an Entra token and the tenant's Entra keys never verify an OAuth token, even when
        both modes are on (no key confusion between trust domains)."""
        from scim_core.settings import ENTRA_PROVISIONING_AUDIENCE

        profiles: list[_JwtProfile] = []
        issuer, audience, jwks_url = settings.jwt_issuer, settings.jwt_audience, settings.jwks_url
        oauth = {
            "SCIM_JWT_ISSUER": issuer,
            "SCIM_JWT_AUDIENCE": audience,
            "SCIM_JWKS_URL": jwks_url,
        }
        if _all_or_none("OAuth client-credentials mode", oauth):
            assert issuer and audience and jwks_url
            check_jwks_url(jwks_url)
            profiles.append(_JwtProfile(issuer, audience, JwksCache(jwks_url, jwks_fetcher)))
        if tenant := settings.test_only_entra_tenant_id:
            logger.warning(
                "SCIM_TEST_ONLY_ENTRA_TENANT_ID is set: Entra's own provisioning token "
                '("blank Secret Token") is accepted for tenant %s. Any enterprise app of that '
                "tenant can obtain such a token; Microsoft says it is for testing only. Unset it "
                "in production and use a Secret Token.",
                tenant,
            )
            entra_keys = JwksCache(ENTRA_JWKS_URL.format(tenant=tenant), jwks_fetcher)
            profiles.append(
                _JwtProfile(
                    ENTRA_ISSUER.format(tenant=tenant),
                    ENTRA_PROVISIONING_AUDIENCE,
                    entra_keys,
                    tenant,
                )
            )
        app_issuer, app_audience = settings.app_jwt_issuer, settings.app_jwt_audience
        app_jwks = settings.app_jwks_url
        app_mode = {
            "SCIM_APP_JWT_ISSUER": app_issuer,
            "SCIM_APP_JWT_AUDIENCE": app_audience,
            "SCIM_APP_JWKS_URL": app_jwks,
        }
        on = _all_or_none("app-role mode", app_mode)
        if on and app_issuer and app_audience and app_jwks:
            check_jwks_url(app_jwks)
            # A cache of its own even when the URL equals another profile's: keys are held per
            # trust domain.
            app_keys = JwksCache(app_jwks, jwks_fetcher)
            profiles.append(_JwtProfile(app_issuer, app_audience, app_keys, app=True))
        return cls(
            settings.bearer_tokens(),
            profiles,
            settings.app_tokens(),
            parse_scopes(settings.app_scopes),
        )

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The caller, or Unauthorized (401) with a detail that never contains the token."""
        if not self._digests and not self._profiles:
            raise Unauthorized("the SCIM endpoint has no credentials configured")
        scheme, _, token = (authorization_header or "").strip().partition(" ")
        if not scheme:
            raise Unauthorized("missing bearer token")
        # RFC 7235 §2.1: the scheme is case-insensitive ("Bearer", "bearer").
        if scheme.lower() != "bearer":
            raise Unauthorized("authorization scheme must be Bearer")
        token = token.strip()
        if not token:
            raise Unauthorized("missing bearer token")

        # Static tokens first, for every token: an admin may type a JWT-shaped Secret Token.
        if (index := self._match_static(token)) is not None:
            if index < self._entra_tokens:
                return Principal(kind="token", subject=f"static-token-{index + 1}")
            return Principal(
                kind="token",
                subject=f"app-token-{index - self._entra_tokens + 1}",
                role="app",
                scopes=self._app_scopes,
            )
        if self._profiles and _JWT_SHAPE.match(token):
            return self._authenticate_jwt(token)
        raise Unauthorized("invalid token")

    def _match_static(self, token: str) -> int | None:
        candidate = hashlib.sha256(token.encode()).digest()
        # Compare against every token without short-circuiting, then pick the match.
        results = [hmac.compare_digest(candidate, digest) for digest in self._digests]
        return results.index(True) if any(results) else None

    def _authenticate_jwt(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token: malformed JWT") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise Unauthorized("invalid token: signing algorithm not accepted")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("invalid token: no key id (kid) in header")
        profile = self._select_profile(unverified)
        jwk = profile.jwks.get_key(kid)
        if jwk.get("alg", alg) != alg:
            raise Unauthorized("invalid token: signing algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                key=jwt.PyJWK(dict(jwk), algorithm=alg).key,
                algorithms=[alg],
                audience=profile.audience,
                issuer=profile.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token not yet valid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"invalid token: missing required claim {exc.claim!r}") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("invalid token: bad signature") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        tid = claims.get("tid")
        if profile.tenant_id and tid is not None and tid != profile.tenant_id:
            raise Unauthorized("invalid token: tenant not accepted")
        return Principal(
            kind="jwt",
            subject=str(claims.get("sub", "")),
            issuer=profile.issuer,
            tenant_id=tid if isinstance(tid, str) else profile.tenant_id,
            client_id=claims.get("azp") or claims.get("appid"),
            role="app" if profile.app else "provisioning",
            scopes=scopes_of_roles(claims.get("roles")) if profile.app else frozenset(),
        )

    def _select_profile(self, unverified: Mapping[str, Any]) -> _JwtProfile:
        """Pick the profile by the (still unverified) iss and aud; jwt.decode re-checks both."""
        by_issuer = [p for p in self._profiles if p.issuer == unverified.get("iss")]
        if not by_issuer:
            raise Unauthorized("invalid token: issuer not accepted")
        aud = unverified.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        matching = [p for p in by_issuer if p.audience in audiences]
        if not matching:
            raise Unauthorized("invalid token: audience not accepted")
        if len({p.app for p in matching}) > 1:
            # One token for two trust domains (several audiences): refuse rather than guess
            # which rights it carries.
            raise Unauthorized("invalid token: audience fits more than one credential kind")
        return matching[0]


def _all_or_none(mode: str, settings: dict[str, str | None]) -> bool:
    """Whether a JWT mode is on: all its settings set. Some but not all is a start-up error
    naming the missing ones (better than a mode silently off)."""
    missing = [name for name, value in settings.items() if not value]
    if len(missing) == len(settings):
        return False
    if missing:
        raise ValueError(f"{mode} needs {', '.join(missing)}")
    return True
