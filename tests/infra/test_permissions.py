"""Matching Azure RBAC actions the way Resource Manager does (infra/permissions.py).

Microsoft Learn, "Understand Azure role definitions": a role grants its Actions minus its
NotActions; ``*`` is a wildcard; operation names are case-insensitive; a NotAction of one role
does not remove what another role grants.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import permissions

PURGE = "Microsoft.KeyVault/locations/deletedVaults/purge/action"
DEPLOY = "Microsoft.Resources/deployments/write"

OWNER = {"actions": ["*"], "notActions": []}
CONTRIBUTOR = {
    "actions": ["*"],
    "notActions": [
        "Microsoft.Authorization/*/Delete",
        "Microsoft.Authorization/*/Write",
        "Microsoft.Authorization/elevateAccess/Action",
    ],
}
READER = {"actions": ["*/read"], "notActions": []}
KEY_VAULT_CONTRIBUTOR = {
    "actions": ["Microsoft.Authorization/*/read", "Microsoft.KeyVault/*"],
    "notActions": [PURGE, "Microsoft.KeyVault/hsmPools/*"],
}


@pytest.mark.parametrize(
    ("roles", "action", "held"),
    [
        ([OWNER], PURGE, True),
        ([CONTRIBUTOR], PURGE, True),
        ([CONTRIBUTOR], "Microsoft.Authorization/roleAssignments/write", False),
        ([READER], DEPLOY, False),
        ([READER], "Microsoft.Web/sites/read", True),
        ([KEY_VAULT_CONTRIBUTOR], PURGE, False),
        ([KEY_VAULT_CONTRIBUTOR], "Microsoft.KeyVault/vaults/delete", True),
        ([KEY_VAULT_CONTRIBUTOR, CONTRIBUTOR], PURGE, True),
        ([{"actions": ["microsoft.keyvault/LOCATIONS/*"], "notActions": []}], PURGE, True),
        ([], PURGE, False),
        ([{"actions": None, "notActions": None}], PURGE, False),
    ],
    ids=[
        "owner", "contributor", "contributor-no-role-assignments", "reader-cannot-deploy",
        "reader-reads", "key-vault-contributor-cannot-purge", "key-vault-contributor-deletes",
        "another-role-grants-it", "case-insensitive-wildcard", "no-role", "empty-lists",
    ],
)  # fmt: skip
def test_holds(roles: list[dict[str, Any]], action: str, held: bool) -> None:
    assert permissions.holds(roles, action) is held


def test_missing_lists_what_is_not_held_in_order() -> None:
    wanted = ["Microsoft.Web/sites/read", DEPLOY, PURGE]
    assert permissions.missing([READER], wanted) == [DEPLOY, PURGE]
