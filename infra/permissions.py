"""Up-front Azure RBAC checks: does the signed-in principal hold the actions a command needs?

A command that fails half-way (a resource group deleted, its Key Vault not purged; a deployment
refused after the resources were listed) is worse than one that refuses to start. Before such a
command runs, the tool asks Azure Resource Manager which actions the caller holds at the scope
(Microsoft Learn, REST API "Permissions - List For Resource Group" / "List For Resource",
https://learn.microsoft.com/rest/api/authorization/permissions) and matches them the way Azure
RBAC does (Learn, "Understand Azure role definitions": Actions minus NotActions, ``*`` wildcards,
case-insensitive). Deny assignments are not evaluated: they only ever remove access, so a check
that passes can still end in AuthorizationFailed, with Azure's own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .azcli import AzureCli

#: api-version of Microsoft.Authorization/permissions used here.
API_VERSION = "2022-04-01"

#: What dry-run assumes the caller holds.
ALL_ACTIONS: dict[str, Any] = {"value": [{"actions": ["*"], "notActions": []}]}


def _pattern(action: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in action.split("*")) + "$", re.IGNORECASE
    )


def holds(permissions: Iterable[Mapping[str, Any]], action: str) -> bool:
    """Whether ``action`` is granted: some role's Actions match it and its NotActions do not.

    Each entry is one role assignment's permission set, so a NotAction of one role never takes
    away what another role grants (Learn, "Understand Azure role definitions", NotActions)."""
    for permission in permissions:
        granted = any(_pattern(a).match(action) for a in permission.get("actions") or [])
        removed = any(_pattern(a).match(action) for a in permission.get("notActions") or [])
        if granted and not removed:
            return True
    return False


def missing(permissions: Iterable[Mapping[str, Any]], actions: Sequence[str]) -> list[str]:
    entries = list(permissions)
    return [action for action in actions if not holds(entries, action)]


def subscription_id(az: AzureCli) -> str:
    return az.run("account show --query id --output tsv", placeholder="<subscription-id>")


def require(az: AzureCli, scope: str, actions: Sequence[str], explanation: str) -> None:
    """Exit with ``explanation`` (and the missing actions) unless the caller holds ``actions``
    at ``scope`` (a resource id such as ``/subscriptions/<id>/resourceGroups/<rg>``)."""
    # A relative URL: az rest prefixes the current cloud's Resource Manager endpoint.
    # az rest takes no --subscription: the scope names the subscription.
    answer = az.run_json(
        "rest --method get --url {url}",
        arm=False,
        url=f"{scope}/providers/Microsoft.Authorization/permissions?api-version={API_VERSION}",
        placeholder=ALL_ACTIONS,
    )
    lacking = missing(answer.get("value", []), actions)
    if lacking:
        raise SystemExit(
            f"{explanation}\nMissing at {scope}: {', '.join(lacking)}.\nNothing was changed."
        )
