#!/usr/bin/env python3
"""A complete, minimal receiver of the endpoint's provisioning events (docs/events.md).

Copy it, replace :func:`apply` with what your app does with a change, run it as a service.
Standard library + PyJWT (``pip install "PyJWT[crypto]"``) only.

What it does, per RFC 8936 (poll-based SET delivery):

1. ``POST {SCIM_BASE_URL}/Events`` with ``{"ack": [...], "setErrs": {...}, "maxEvents": 100,
   "returnImmediately": false}``: acknowledges what the previous round processed and waits
   (long poll) for the next SETs.
2. Verifies each SET's signature with the endpoint's keys (``GET {SCIM_BASE_URL}/Events/keys``,
   a JWKS; fetched again when a SET names an unknown ``kid``, i.e. after a key rotation), its
   ``typ`` (``secevent+jwt``, RFC 8417 §2.3), issuer and audience.
3. Applies each event in the order received (per resource, that is commit order), skipping any
   ``jti`` already processed: delivery is at least once, so a SET may come again after a crash
   or a lost ack.
4. Records the ``jti`` in a durable checkpoint (an fsync'ed append-only file) **before**
   acknowledging it in the next poll. A crash between apply and checkpoint re-applies one event
   (make :func:`apply` idempotent); a crash between checkpoint and ack only re-delivers it, and
   the checkpoint skips it.

A SET that fails verification is reported in ``setErrs`` (RFC 8936 §2.4.3): the endpoint logs
it and drops it. Settings (environment): ``SCIM_BASE_URL`` (``https://<app>/scim/v2``;
``http://127.0.0.1:7071/scim/v2`` locally), ``SCIM_EVENTS_TOKEN`` (your app's credential with the
``events`` scope; never Entra's token), ``SCIM_EVENTS_ISSUER`` / ``SCIM_EVENTS_AUDIENCE`` (what
the operator configured; optional), ``EVENTS_CHECKPOINT`` (default ``events.checkpoint``),
``EVENTS_ALLOW_UNSIGNED`` (``true`` only if the operator sends unsigned SETs).

Run: ``python events_receiver.py`` (forever) or ``python events_receiver.py --until-idle`` (stop
once nothing is pending: a batch job, or a test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

SET_TYPE = "secevent+jwt"
PROV = "urn:ietf:params:scim:event:prov:"
#: Checkpoint entries older than this are forgotten at start: the endpoint keeps an unacked
#: event for SCIM_EVENTS_RETENTION_DAYS (default 7), so none older can come again.
FORGET_AFTER = timedelta(days=31)


def apply(claims: dict[str, Any], out: Any) -> None:
    """YOUR APP'S CODE: act on one event. Here: print one line per event.

    ``claims["sub_id"]["uri"]`` is ``/Users/<id>`` or ``/Groups/<id>``; ``claims["events"]``
    maps RFC 9967 event URIs to their payloads: ``...:create:notice`` / ``:put:`` / ``:patch:``
    (``attributes`` changed; ``:full`` variants carry ``data``), ``...:activate``,
    ``...:deactivate`` (sign the user out, stop their access), ``...:delete``. A notice names
    what changed: read the resource (``GET {SCIM_BASE_URL}/Users/<id>``) for the values.
    """
    kinds = sorted(uri.removeprefix(PROV) for uri in claims["events"])
    line = {"jti": claims["jti"], "subject": claims["sub_id"]["uri"], "events": kinds}
    out.write(json.dumps(line) + "\n")
    out.flush()


class Checkpoint:
    """The ``jti`` already processed, durable across restarts (one line each, fsync'ed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists():
            horizon = datetime.now(UTC) - FORGET_AFTER
            self.done = {j for j in path.read_text().split() if _issued(j) >= horizon}
            path.write_text("".join(j + "\n" for j in sorted(self.done)))  # compacted
        self._file = path.open("a", encoding="utf-8")

    def add(self, jti: str) -> None:
        self._file.write(jti + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(jti)


def _issued(jti: str) -> datetime:
    """The commit time this endpoint puts in its ``jti`` (``U<time>|<hex>``); now if none."""
    try:
        return datetime.fromisoformat(jti[1:].split("|")[0].replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


class Endpoint:
    """The SCIM endpoint's event routes, with the app's credential."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token
        self.keys: dict[str, Any] = {}

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def key(self, kid: str) -> Any:
        if kid not in self.keys:  # first use, or the operator rotated the signing key
            jwks = self.call("GET", "/Events/keys")
            self.keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
        if kid not in self.keys:
            raise jwt.InvalidKeyError(f"no key {kid!r} at /Events/keys")
        return self.keys[kid]


class Unsigned(Exception):
    """An unsecured SET (``alg: none``) while EVENTS_ALLOW_UNSIGNED is not ``true``: a setting
    to fix on one side, not a bad SET to report (``setErrs`` would drop every event)."""


def verify(endpoint: Endpoint, token: str, issuer: str | None, audience: str | None) -> Any:
    header = jwt.get_unverified_header(token)
    if header.get("typ") != SET_TYPE:
        raise jwt.InvalidTokenError(f"typ is {header.get('typ')!r}, not {SET_TYPE}")
    if header.get("alg") == "none":
        # Only when the operator runs SCIM_EVENTS_UNSIGNED=true: then the TLS channel and your
        # credential are what authenticate the endpoint (docs/events.md, "Signed or not").
        if os.environ.get("EVENTS_ALLOW_UNSIGNED") != "true":
            raise Unsigned("the endpoint sends unsigned SETs: set EVENTS_ALLOW_UNSIGNED=true")
        options = {"verify_signature": False, "require": ["jti", "iat", "events"]}
        return jwt.decode(token, options=options)
    key = endpoint.key(str(header.get("kid")))
    options = {"require": ["jti", "iat", "events"], "verify_aud": audience is not None}
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        issuer=issuer,
        audience=audience,
        options=options,
    )


def _error_code(exc: jwt.PyJWTError) -> str:
    """The RFC 8935 §2.4 error code of a SET that failed verification (RFC 8936 setErrs)."""
    if isinstance(exc, (jwt.InvalidSignatureError, jwt.InvalidKeyError)):
        return "invalid_key"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "invalid_issuer"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "invalid_audience"
    return "invalid_request"


def receive(until_idle: bool, out: Any = sys.stdout) -> int:
    """The poll loop; returns how many events it applied."""
    endpoint = Endpoint(os.environ["SCIM_BASE_URL"], os.environ["SCIM_EVENTS_TOKEN"])
    issuer = os.environ.get("SCIM_EVENTS_ISSUER") or None
    audience = os.environ.get("SCIM_EVENTS_AUDIENCE") or None
    checkpoint = Checkpoint(Path(os.environ.get("EVENTS_CHECKPOINT", "events.checkpoint")))
    acks: list[str] = []
    errors: dict[str, dict[str, str]] = {}
    applied, pause = 0, 1.0
    while True:
        request = {"ack": acks, "setErrs": errors, "maxEvents": 100}
        request["returnImmediately"] = until_idle
        try:
            answer = endpoint.call("POST", "/Events", request)
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code != 429:  # our credential or request: fix it
                raise SystemExit(
                    f"POST /Events answered {exc.code}: {exc.read()[:300]!r}"
                ) from None
            print(f"poll failed ({exc}); retrying in {pause:.0f} s", file=sys.stderr)
            time.sleep(pause)
            pause = min(pause * 2, 60.0)
            continue
        except OSError as exc:  # endpoint away: keep the acks, retry
            print(f"poll failed ({exc}); retrying in {pause:.0f} s", file=sys.stderr)
            time.sleep(pause)
            pause = min(pause * 2, 60.0)
            continue
        pause, acks, errors = 1.0, [], {}
        for jti, token in answer["sets"].items():
            if jti not in checkpoint.done:
                try:
                    claims = verify(endpoint, token, issuer, audience)
                except jwt.PyJWTError as exc:
                    errors[jti] = {"err": _error_code(exc), "description": str(exc)[:200]}
                    continue
                apply(claims, out)
                checkpoint.add(jti)
                applied += 1
            acks.append(jti)
        if until_idle and not answer["sets"] and not answer["moreAvailable"]:
            return applied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until-idle", action="store_true", help="stop once no event is pending")
    args = parser.parse_args()
    try:
        applied = receive(args.until_idle)
    except Unsigned as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"applied {applied} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
