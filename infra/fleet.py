"""``status``: every instance's health in one table, read with the consultant's own login.

For each instance (``list``'s, or one customer's): the app's ``GET /status`` route
(scim_core/status.py) called with the instance's token read from its Key Vault (the deploy
tool's login holds Key Vault Secrets Officer there), the age of both token secrets from Key
Vault's ``attributes.updated`` (Azure Monitor has no signal for a secret's age; see
docs/deploy.md), and the link to the instance's workbook. The token is never printed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .azcli import AzError, AzureCli

#: The status route's scheme; tests against the loopback host use http.
STATUS_SCHEME = "https"
#: Flag tokens older than this many days (rotate-token resets the age).
MAX_TOKEN_AGE_DAYS = 180


@dataclass(frozen=True)
class Health:
    customer: str
    status: dict[str, Any] | None
    token_days: tuple[int | None, int | None]
    workbook: str | None
    problem: str | None = None


def fetch_status(url: str, token: str, timeout: float = 30.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our URL)
            found = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"HTTP {exc.code} from the status route") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
        raise RuntimeError(f"status route unreachable: {exc}") from exc
    if not isinstance(found, dict):
        raise RuntimeError("the status route did not answer a JSON object")
    return found


def secret_age_days(az: AzureCli, vault: str, name: str, now: datetime) -> int | None:
    updated = az.run(
        "keyvault secret show --vault-name {vault} --name {name} --query attributes.updated"
        " --output tsv",
        vault=vault,
        name=name,
        placeholder="",
    )
    try:
        when = datetime.fromisoformat(updated.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - when.astimezone(UTC)).days


def workbook_link(az: AzureCli, resource_group: str, tenant: str, deployment: str) -> str | None:
    workbook_id = az.run(
        "deployment group show --resource-group {rg} --name {deployment}"
        " --query properties.outputs.workbookId.value --output tsv",
        rg=resource_group,
        deployment=deployment,
        placeholder="<workbookId>",
    ).strip()
    if not workbook_id:
        return None  # deployed before the workbook existed: redeploy
    return f"https://portal.azure.com/#@{tenant}/resource{workbook_id}/workbook"


def row(health: Health, max_age: int) -> list[str]:
    if health.status is None:
        return [health.customer, "-", "-", "-", "-", "-", "-", "-", health.problem or "?"]
    scim = health.status.get("scim") or {}
    day = scim.get("last24h") or {}
    graph = health.status.get("graphSync") or {}
    users = (health.status.get("users") or {}).get("count")
    last_run = graph.get("lastRun") or {}
    sync = str(last_run.get("outcome", "never"))
    if graph.get("consecutiveFailures"):
        sync += f" x{graph['consecutiveFailures']}"
    lag = graph.get("lagSeconds")
    errors = day.get("errors", 0)
    by_status = day.get("byStatus") or {}
    worst = ",".join(f"{s}:{n}" for s, n in sorted(by_status.items()) if s >= "400")
    notes = [f"token {d}d old: rotate-token" for d in health.token_days[:1] if d and d > max_age]
    return [
        health.customer,
        str(day.get("requests", 0)),
        f"{errors}" + (f" ({worst})" if worst else ""),
        str(scim.get("lastRequest") or "never"),
        sync,
        "-" if lag is None else f"{lag // 60}m",
        "-" if users is None else str(users),
        "/".join("-" if d is None else f"{d}d" for d in health.token_days),
        "; ".join(notes) or "ok",
    ]


HEADER = [
    "customer",
    "requests 24h",
    "errors 24h",
    "last Entra request",
    "graph sync",
    "sync lag",
    "users",
    "token age",
    "note",
]


def report(
    az: AzureCli,
    healths: list[Health],
    max_age: int,
    table: Callable[[list[list[str]]], list[str]],
) -> None:
    for line in table([HEADER, *(row(h, max_age) for h in healths)]):
        az.echo(line)
    az.echo("(token age: primary/secondary secret, days since last set)")
    for health in healths:
        if health.workbook:
            az.echo(f"workbook {health.customer}: {health.workbook}")


def guarded(customer: str, probe: Callable[[], Health]) -> Health:
    """One instance's trouble is a row, not the end of the report."""
    try:
        return probe()
    except (AzError, RuntimeError, SystemExit) as exc:
        return Health(customer, None, (None, None), None, str(exc).splitlines()[0][:120])
