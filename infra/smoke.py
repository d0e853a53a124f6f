"""The same probe as Entra's "Test Connection": filter users by a userName that cannot exist.

Entra sends ``GET /Users?filter=userName eq "<random guid>"`` with the Secret Token and expects 200
with an empty ListResponse. Run after every deploy, it proves routing, authentication, the Key Vault
reference and the table store in one request.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable


class SmokeTestFailed(RuntimeError):
    """The instance did not answer the Test Connection probe as Entra expects."""


def probe_url(tenant_url: str) -> str:
    query = urllib.parse.urlencode(
        {"filter": f'userName eq "{uuid.uuid4()}"'}, quote_via=urllib.parse.quote
    )
    return f"{tenant_url.rstrip('/')}/Users?{query}"


def probe(tenant_url: str, token: str, *, timeout: float = 30.0) -> None:
    """One Test Connection request; raises SmokeTestFailed unless 200 with totalResults 0."""
    request = urllib.request.Request(
        probe_url(tenant_url),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URL we built)
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        raise SmokeTestFailed(f"HTTP {exc.code} from {tenant_url}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise SmokeTestFailed(f"{tenant_url} unreachable: {exc}") from exc
    if status != 200:
        raise SmokeTestFailed(f"HTTP {status} from {tenant_url}, expected 200")
    try:
        total = json.loads(body)["totalResults"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SmokeTestFailed(f"{tenant_url} did not return a SCIM ListResponse") from exc
    if total != 0:
        raise SmokeTestFailed(f"totalResults is {total} for a random userName, expected 0")


def wait_until_ready(
    tenant_url: str,
    token: str,
    *,
    timeout: float = 300.0,
    interval: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> None:
    """Probe until it passes: a fresh app needs a cold start and its Key Vault references."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe(tenant_url, token)
            return
        except SmokeTestFailed as exc:
            if time.monotonic() + interval > deadline:
                raise
            log(f"  not ready yet ({exc}); retrying in {interval:.0f}s")
            sleep(interval)
