"""Bearer-token authentication (ENTRA.md "Transport and auth").

Entra sends ``Authorization: Bearer <token>`` on every request. Three modes, any combination:

1. **Secret Token** — static tokens (primary + secondary, so a token can be rotated without
   downtime), compared in constant time.
2. **OAuth client credentials** — a JWT checked against ``SCIM_JWT_ISSUER``,
   ``SCIM_JWT_AUDIENCE`` and the keys at ``SCIM_JWKS_URL``.
3. **Blank Secret Token** — Entra's own provisioning JWT, accepted only for the tenant named in
   ``SCIM_ENTRA_TENANT_ID``.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scim_core.errors import ServiceUnavailable, Unauthorized

if TYPE_CHECKING:
    from scim_core.settings import Settings

__all__ = ["Authenticator", "JwksCache", "JwksFetcher", "Principal", "fetch_jwks"]

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
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True)
class Principal:
    """Who made the request. Never holds the token itself."""

    kind: Literal["token", "jwt"]
    subject: str
    """``static-token-1``/``-2`` for static tokens; the ``sub`` claim for JWTs."""
    issuer: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    """``azp`` (v2) or ``appid`` (v1) claim: the calling application."""


def fetch_jwks(url: str, timeout: float = 5.0) -> Mapping[str, Any]:
    """Default fetcher: GET ``url`` with the stdlib (imported lazily: it is cold-start weight)."""
    import json
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        document = json.loads(response.read())
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


class Authenticator:
    """Checks the ``Authorization`` header of each request. Build once per process."""

    def __init__(self, static_tokens: list[str], profiles: list[_JwtProfile]) -> None:
        # Compare sha256 digests: equal length whatever the token length, so nothing leaks it.
        self._digests = [hashlib.sha256(t.encode()).digest() for t in static_tokens]
        self._profiles = profiles

    @classmethod
    def from_settings(
        cls, settings: Settings, jwks_fetcher: JwksFetcher | None = None
    ) -> Authenticator:
        """Raises ValueError if a JWT mode is half configured (better than silently off)."""
        from scim_core.settings import ENTRA_PROVISIONING_AUDIENCE

        caches: dict[str, JwksCache] = {}

        def cache_for(url: str) -> JwksCache:
            return caches.setdefault(url, JwksCache(url, jwks_fetcher))

        profiles: list[_JwtProfile] = []
        issuer, audience, jwks_url = settings.jwt_issuer, settings.jwt_audience, settings.jwks_url
        if issuer or audience:
            if not (issuer and audience and jwks_url):
                named = {
                    "SCIM_JWT_ISSUER": issuer,
                    "SCIM_JWT_AUDIENCE": audience,
                    "SCIM_JWKS_URL": jwks_url,
                }
                missing = ", ".join(name for name, value in named.items() if not value)
                raise ValueError(f"OAuth client-credentials mode needs {missing}")
            profiles.append(_JwtProfile(issuer, audience, cache_for(jwks_url)))
        if tenant := settings.entra_tenant_id:
            entra_issuer = ENTRA_ISSUER.format(tenant=tenant)
            url = jwks_url or ENTRA_JWKS_URL.format(tenant=tenant)
            profiles.append(
                _JwtProfile(entra_issuer, ENTRA_PROVISIONING_AUDIENCE, cache_for(url), tenant)
            )
        return cls(settings.bearer_tokens(), profiles)

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
            return Principal(kind="token", subject=f"static-token-{index + 1}")
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
        )

    def _select_profile(self, unverified: Mapping[str, Any]) -> _JwtProfile:
        """Pick the profile by the (still unverified) iss and aud; jwt.decode re-checks both."""
        by_issuer = [p for p in self._profiles if p.issuer == unverified.get("iss")]
        if not by_issuer:
            raise Unauthorized("invalid token: issuer not accepted")
        aud = unverified.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        for profile in by_issuer:
            if profile.audience in audiences:
                return profile
        raise Unauthorized("invalid token: audience not accepted")
