"""The same probe as Entra's "Test Connection": query a user and a group that cannot exist.

Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra
ID" (https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups):
Test Connection "queries the SCIM endpoint for a user that doesn't exist, using a random GUID as
the matching property selected in the Microsoft Entra configuration" and expects 200 with an
empty ListResponse; Entra also "makes requests to fetch a random user and group". So the probe
filters users on the matching attribute docs/entra-setup.md recommends (``externalId``; Entra's
default mapping would use ``userName``) and groups on their default matching attribute
(``displayName``, with ``excludedAttributes=members`` as Entra sends group queries). Run after
every deploy, it proves routing, authentication, the Key Vault reference and both tables.
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


#: The user matching attribute docs/entra-setup.md recommends (objectId -> externalId).
USER_MATCHING_ATTRIBUTE = "externalId"


def probe_urls(tenant_url: str, user_attribute: str = USER_MATCHING_ATTRIBUTE) -> list[str]:
    """The user query and the group query, each for a random GUID that no resource carries."""
    base = tenant_url.rstrip("/")

    def query(params: dict[str, str]) -> str:
        return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)

    return [
        f"{base}/Users?" + query({"filter": f'{user_attribute} eq "{uuid.uuid4()}"'}),
        f"{base}/Groups?"
        + query({"excludedAttributes": "members", "filter": f'displayName eq "{uuid.uuid4()}"'}),
    ]


def probe(
    tenant_url: str,
    token: str,
    *,
    timeout: float = 30.0,
    user_attribute: str = USER_MATCHING_ATTRIBUTE,
) -> None:
    """Entra's Test Connection queries; raises SmokeTestFailed unless each answers 200 with
    totalResults 0."""
    for url in probe_urls(tenant_url, user_attribute):
        _probe_one(tenant_url, url, token, timeout)


def _probe_one(tenant_url: str, url: str, token: str, timeout: float) -> None:
    request = urllib.request.Request(
        url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
    )
    what = url[len(tenant_url.rstrip("/")) :].split("?")[0]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URL we built)
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        raise SmokeTestFailed(f"HTTP {exc.code} from {tenant_url}{what}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise SmokeTestFailed(f"{tenant_url} unreachable: {exc}") from exc
    if status != 200:
        raise SmokeTestFailed(f"HTTP {status} from {tenant_url}{what}, expected 200")
    try:
        total = json.loads(body)["totalResults"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SmokeTestFailed(f"{tenant_url}{what} did not return a SCIM ListResponse") from exc
    if total != 0:
        raise SmokeTestFailed(f"totalResults is {total} for a random GUID on {what}, expected 0")


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
