"""`python -m infra.deploy ... --dry-run` prints every command it would run, in order; runs none.

These run the real command line as a subprocess with an empty PATH for `az`: a dry run that tried
to execute anything would fail, so passing tests also prove nothing was run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .templates import INFRA, ROOT

TENANT = "11111111-2222-3333-4444-555555555555"

#: What a token from secrets.token_urlsafe(48) looks like.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{64}")


def dry_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "PATH": "/nonexistent"}  # no az, no pip: nothing can run
    return subprocess.run(
        [sys.executable, "-m", "infra.deploy", *args, "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def index_of(lines: list[str], prefix: str) -> int:
    matches = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert len(matches) == 1, f"expected one command starting {prefix!r}, got {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def deploy_output() -> str:
    done = dry_run("deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_deploy_runs_the_steps_in_order(deploy_output: str) -> None:
    lines = commands(deploy_output)
    steps = [
        "az account show",
        "az ad signed-in-user show",
        "az group create",
        "az deployment group create",
        "az keyvault secret list",
        "az keyvault secret set --vault-name <keyVaultName> --name scim-bearer-token ",
        "az keyvault secret set --vault-name <keyVaultName> --name scim-bearer-token-secondary ",
        "az functionapp restart",
    ]
    positions = [index_of([line.replace("'", "") for line in lines], step) for step in steps]
    pip = index_of([line.split(" ", 1)[1] for line in lines if " " in line], "-m pip install")
    publish = index_of(lines, "az functionapp deployment source config-zip")
    assert positions == sorted(positions)
    assert positions[-1] < pip < publish == len(lines) - 1


def test_deploy_creates_the_resource_group_in_the_location(deploy_output: str) -> None:
    (group,) = [c for c in commands(deploy_output) if c.startswith("az group create")]
    assert "--name rg-scim-contoso" in group
    assert "--location westeurope" in group


def test_deploy_uses_the_customers_parameter_file(deploy_output: str) -> None:
    """The .bicepparam's `using` line names main.bicep; --template-file with a .bicepparam is an
    Azure CLI error (Learn, "Deploy Bicep files with the Azure CLI", Bicep parameters files)."""
    (deployment,) = [
        c for c in commands(deploy_output) if c.startswith("az deployment group create")
    ]
    assert "--template-file" not in deployment
    assert f"--parameters {INFRA / 'customers' / 'contoso.bicepparam'} --parameters" in deployment
    assert f"entraTenantId={TENANT}" in deployment
    assert "--resource-group rg-scim-contoso" in deployment


def test_deploy_never_shows_a_token(deploy_output: str) -> None:
    """Dry-run generates nothing: `<generated>` stands where the token would be shown."""
    assert "Secret Token: <generated>" in deploy_output
    assert TOKEN_SHAPE.search(deploy_output) is None
    assert all("--value" not in c for c in commands(deploy_output))


def test_deploy_passes_secrets_through_a_file(deploy_output: str) -> None:
    sets = [c for c in commands(deploy_output) if c.startswith("az keyvault secret set")]
    names = [c.split(" --name ")[1].split()[0] for c in sets]
    assert names == [
        "scim-bearer-token",
        "scim-bearer-token-secondary",
        "graph-client-state",
        "scim-app-token",
        "scim-app-token-secondary",
        "scim-events-signing-key",
        "scim-events-push-token",
    ]
    assert all("--file" in c and "--output none" in c for c in sets)


def test_deploy_builds_linux_wheels_for_python_3_11(deploy_output: str) -> None:
    (pip,) = [c for c in commands(deploy_output) if "-m pip install" in c]
    assert "--platform manylinux2014_x86_64" in pip
    assert "--python-version 3.11" in pip
    assert "--only-binary=:all:" in pip
    assert ".python_packages/lib/site-packages" in pip


def test_deploy_publishes_the_tested_package_without_a_remote_build(deploy_output: str) -> None:
    """On Flex the Azure CLI builds Python remotely unless told otherwise; the tool says so
    explicitly, so the locally built and tested wheels are what runs."""
    (publish,) = [
        c
        for c in commands(deploy_output)
        if c.startswith("az functionapp deployment source config-zip")
    ]
    assert "--build-remote false" in publish


def test_deploy_dry_run_has_no_smoke_test(deploy_output: str) -> None:
    assert "Smoke test" not in deploy_output
    assert "Tenant URL:" in deploy_output


def test_subscription_is_passed_to_every_azure_resource_manager_command() -> None:
    done = dry_run(
        "deploy",
        "contoso",
        "--location",
        "westeurope",
        "--tenant-id",
        TENANT,
        "--subscription",
        "sub-123",
    )
    assert done.returncode == 0, done.stderr
    for command in commands(done.stdout):
        if command.startswith("az ") and not command.startswith("az ad "):
            assert command.endswith("--subscription sub-123"), command


def test_rotate_add_writes_a_pending_secondary_token() -> None:
    done = dry_run("rotate-token", "contoso", "--stage", "add")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    (secret_set,) = [c for c in lines if c.startswith("az keyvault secret set")]
    assert "--name scim-bearer-token-secondary " in secret_set and "role=pending" in secret_set
    assert index_of(lines, "az keyvault secret set") < index_of(lines, "az functionapp restart")
    assert "New Secret Token: <generated>" in done.stdout
    assert TOKEN_SHAPE.search(done.stdout) is None


def test_rotate_retire_promotes_the_secondary_and_clears_it() -> None:
    done = dry_run("rotate-token", "contoso", "--stage", "retire")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    read = index_of(
        lines,
        "az keyvault secret show --vault-name <keyVaultName> --name scim-bearer-token-secondary",
    )
    promote = index_of(
        lines, "az keyvault secret set --vault-name <keyVaultName> --name scim-bearer-token "
    )
    clear = index_of(
        lines,
        "az keyvault secret set --vault-name <keyVaultName> --name scim-bearer-token-secondary",
    )
    assert read < promote < clear < index_of(lines, "az functionapp restart")
    assert "role=primary" in lines[promote] and "role=disabled" in lines[clear]


PERMISSIONS = "/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"


def test_teardown_checks_permissions_then_deletes_the_group_and_purges_the_vault() -> None:
    """Both roles are checked (resource group, then subscription for the purge) before anything
    is deleted, so a missing subscription role cannot leave a half-torn-down customer."""
    done = dry_run("teardown", "contoso", "--yes")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    group_check = index_of(
        lines,
        f"az rest --method get --url /subscriptions/<subscription-id>/resourceGroups/"
        f"rg-scim-contoso{PERMISSIONS}",
    )
    purge_check = index_of(
        lines, f"az rest --method get --url /subscriptions/<subscription-id>{PERMISSIONS}"
    )
    delete = index_of(lines, "az group delete --name rg-scim-contoso --yes")
    purge = index_of(lines, "az keyvault purge --name <keyVaultName>")
    assert group_check < purge_check < delete < purge


def test_teardown_keep_vault_skips_the_purge_and_its_check() -> None:
    done = dry_run("teardown", "contoso", "--yes", "--keep-vault")
    assert done.returncode == 0, done.stderr
    lines = commands(done.stdout)
    assert not any(c.startswith("az keyvault purge") for c in lines)
    assert not any(
        c.endswith(f"/subscriptions/<subscription-id>{PERMISSIONS}' --output json") for c in lines
    )


def test_graph_permissions_deploys_the_separate_template() -> None:
    done = dry_run("graph-permissions", "contoso")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    check = index_of(
        lines,
        "az rest --method get --url /subscriptions/<subscription-id>"
        "/resourceGroups/rg-scim-contoso",
    )
    assert (
        check < index_of(lines, "az resource list") < index_of(lines, "az deployment group create")
    )
    assert "Azure role on rg-scim-contoso" in done.stdout
    (deployment,) = [c for c in commands(done.stdout) if c.startswith("az deployment group create")]
    assert f"--template-file {INFRA / 'graph-permissions.bicep'}" in deployment
    assert "grantGroupMemberReadAll=false" in deployment
    assert "grantUserReadWriteAll=false" in deployment


def test_graph_permissions_for_writeback_grant_user_readwrite_all() -> None:
    """``--writeback`` (GRAPH_WRITEBACK, docs/graph-writeback.md): User.ReadWrite.All instead."""
    done = dry_run("graph-permissions", "contoso", "--writeback")
    assert done.returncode == 0, done.stderr
    (deployment,) = [c for c in commands(done.stdout) if c.startswith("az deployment group create")]
    assert "grantUserReadWriteAll=true" in deployment


def test_unknown_customer_is_refused() -> None:
    done = dry_run("deploy", "fabrikam", "--location", "westeurope", "--tenant-id", TENANT)
    assert done.returncode != 0
    assert "fabrikam.bicepparam does not exist" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "Contoso", "--location", "westeurope", "--tenant-id", TENANT),
        ("deploy", "contoso", "--location", "westeurope", "--tenant-id", "not-a-guid"),
        ("rotate-token", "contoso", "--stage", "later"),
    ],
    ids=["uppercase-customer", "tenant-not-a-guid", "unknown-stage"],
)
def test_bad_arguments_are_refused(args: tuple[str, ...]) -> None:
    done = dry_run(*args)
    assert done.returncode == 2
    assert "error:" in done.stderr


@pytest.mark.parametrize(
    ("name", "valid"),
    [("contoso", True), ("contoso_dev", False), ("Contoso", False), ("a" * 21, False)],
    ids=["valid", "underscore", "upper-case", "too-long"],
)
def test_check_name_validates_the_azd_environment_name(name: str, valid: bool) -> None:
    """azd's preprovision hook: an environment name that would make invalid storage or Key
    Vault names stops azd before it provisions anything, with the rule spelled out."""
    env = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "infra.deploy", "check-name", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode == 0) is valid, done.stderr
    if not valid:
        assert "azd environment name" in done.stderr
        assert "lowercase letters, digits and inner hyphens" in done.stderr
