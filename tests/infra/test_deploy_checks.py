"""The deploy tool catches the consultant's mistakes before anything changes in Azure.

Dry runs (a subprocess with no `az` on PATH: tests/infra/test_deploy_dry_run.py) for what is
decided from the arguments and the parameter file; the fake `az` of test_deploy_tokens.py for
what depends on Azure's answers (the signed-in tenant, an existing resource group).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.infra.test_deploy_dry_run import TENANT, commands, dry_run
from tests.infra.test_deploy_tokens import FakeAz, run

from .templates import INFRA

OTHER_TENANT = "99999999-2222-3333-4444-555555555555"


def parameter_file(
    directory: Path, customer: str, *, name: str | None = None, using: str | None = None
) -> Path:
    """A minimal .bicepparam for ``customer`` in ``directory`` (outside the repository)."""
    template = using if using is not None else os.path.relpath(INFRA / "main.bicep", directory)
    path = directory / f"{customer}.bicepparam"
    path.write_text(
        f"using '{template}'\n\nparam customerName = '{name or customer}'\n", encoding="utf-8"
    )
    return path


def test_a_parameter_file_for_another_customer_is_refused(tmp_path: Path) -> None:
    """contoso.bicepparam copied to fabrikam.bicepparam, name unchanged: contoso's resource
    names would be deployed into fabrikam's resource group."""
    parameter_file(tmp_path, "fabrikam", name="contoso")
    done = dry_run(
        "deploy", "fabrikam", "--customers-dir", str(tmp_path), "--location", "westeurope",
        "--tenant-id", TENANT,
    )  # fmt: skip
    assert done.returncode == 1
    assert "sets customerName = 'contoso', but its file name says 'fabrikam'" in done.stderr
    assert commands(done.stdout) == []


def test_parameter_files_may_live_outside_the_repository(tmp_path: Path) -> None:
    """$SCIM_CUSTOMERS_DIR (or --customers-dir) names the directory: customer names need not
    be committed."""
    path = parameter_file(tmp_path, "fabrikam")
    done = dry_run(
        "deploy", "fabrikam", "--location", "westeurope", "--tenant-id", TENANT,
        env={"SCIM_CUSTOMERS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (deployment,) = [c for c in commands(done.stdout) if c.startswith("az deployment group create")]
    assert f"--parameters {path}" in deployment


def test_a_parameter_file_whose_using_line_misses_the_template_is_refused(tmp_path: Path) -> None:
    """A file copied out of the repository keeps using '../main.bicep', which points nowhere."""
    parameter_file(tmp_path, "fabrikam", using="../main.bicep")
    done = dry_run(
        "deploy", "fabrikam", "--customers-dir", str(tmp_path), "--location", "westeurope",
        "--tenant-id", TENANT,
    )  # fmt: skip
    assert done.returncode == 1 and "its using line names '../main.bicep'" in done.stderr


def test_a_new_instance_needs_a_location_and_a_tenant() -> None:
    done = dry_run("deploy", "contoso")
    assert done.returncode == 1
    assert "--location and --tenant-id required" in done.stderr
    assert not any(c.startswith("az group create") for c in commands(done.stdout))


def test_the_printed_tenant_url_carries_the_dialect_flag() -> None:
    """docs/entra-setup.md recommends ?aadOptscim062020; the value to paste must carry it."""
    done = dry_run("deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert done.returncode == 0, done.stderr
    assert "Tenant URL:   <scimTenantUrl>?aadOptscim062020" in done.stdout


def test_deploy_tags_the_group_for_list_and_the_tenant_check() -> None:
    done = dry_run("deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    (group,) = [c for c in commands(done.stdout) if c.startswith("az group create")]
    assert f"--tags scim-customer=contoso scim-product=scim-func scim-tenant={TENANT}" in group


@pytest.mark.parametrize(
    "args",
    [
        ("rotate-token", "contoso", "--stage", "add"),
        ("graph-permissions", "contoso"),
        ("teardown", "contoso", "--yes"),
        ("ensure-token", "contoso"),
    ],
    ids=["rotate-token", "graph-permissions", "teardown", "ensure-token"],
)
def test_every_command_checks_the_signed_in_tenant_first(args: tuple[str, ...]) -> None:
    """The tenant recorded on the group is read and the signed-in one compared before any
    command that changes or reads the instance."""
    done = dry_run(*args)
    assert done.returncode == 0, done.stderr
    lines = commands(done.stdout)
    assert lines[0].startswith("az group show --name rg-scim-contoso --query tags")
    assert lines[1].startswith("az account show --query tenantId")


def test_list_asks_for_tagged_groups_and_tagged_apps() -> None:
    done = dry_run("list")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    assert any(c.startswith("az group list --tag scim-product=scim-func") for c in lines)
    assert any(
        c.startswith(
            "az resource list --tag scim-product=scim-func --resource-type Microsoft.Web/sites"
        )
        for c in lines
    )


class SignedInElsewhere(FakeAz):
    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        if list(argv[:3]) == ["az", "account", "show"]:
            self.argvs.append(list(argv))
            return 0, OTHER_TENANT + "\n", ""
        return super().__call__(argv)


@pytest.mark.parametrize(
    "args",
    [
        ("rotate-token", "contoso", "--stage", "add"),
        ("graph-permissions", "contoso"),
        ("teardown", "contoso", "--yes"),
        ("ensure-token", "contoso"),
        ("deploy", "contoso"),
    ],
    ids=["rotate-token", "graph-permissions", "teardown", "ensure-token", "redeploy"],
)
def test_a_command_signed_in_to_another_tenant_changes_nothing(args: tuple[str, ...]) -> None:
    fake = SignedInElsewhere("https://unused.example/scim/v2")
    with pytest.raises(SystemExit, match=f"az login --tenant {TENANT}"):
        run(fake, *args)
    touched = [a for a in fake.argvs if a[1] not in ("group", "account") or a[2] != "show"]
    assert [a for a in touched if a[1:3] != ["group", "exists"]] == []


def test_an_instance_without_a_recorded_tenant_warns_and_proceeds() -> None:
    """Groups made by azd (or an older version) carry no scim-tenant tag: the check says so
    and goes on (the azd hook must keep working); --tenant-id makes it a real check."""
    fake = FakeAz("https://unused.example/scim/v2")
    code, out = run(fake, "ensure-token", "contoso", "--resource-group", "rg-azd")
    assert code == 0, out
    assert "records no Entra tenant" in out
    with pytest.raises(SystemExit, match="az login --tenant"):
        run(
            fake, "ensure-token", "contoso", "--resource-group", "rg-azd",
            "--tenant-id", OTHER_TENANT,
        )  # fmt: skip


def test_a_redeploy_remembers_location_and_tenant_from_the_group() -> None:
    fake = FakeAz("https://unused.example/scim/v2")
    code, out = run(fake, "deploy", "contoso", "--skip-smoke-test")
    assert code == 0, out
    (group,) = [a for a in fake.argvs if a[1:3] == ["group", "create"]]
    assert group[group.index("--location") + 1] == "westeurope"
    (deployment,) = [a for a in fake.argvs if a[1:4] == ["deployment", "group", "create"]]
    assert f"entraTenantId={TENANT}" in deployment


def test_a_location_that_contradicts_the_group_is_refused() -> None:
    fake = FakeAz("https://unused.example/scim/v2")
    with pytest.raises(SystemExit, match="rg-scim-contoso is in westeurope, not northeurope"):
        run(fake, "deploy", "contoso", "--location", "northeurope")
    assert not any(a[1:3] == ["group", "create"] for a in fake.argvs)


def test_list_prints_one_row_per_instance_and_marks_other_tenants() -> None:
    fake = SignedInElsewhere("https://unused.example/scim/v2")
    code, out = run(fake, "list")
    assert code == 0, out
    rows = [line.split() for line in out.splitlines() if not line.startswith("+")]
    assert rows[0] == ["customer", "resource", "group", "location", "tenant"]
    assert ["azdco", "rg-azd", "westeurope", "?"] in rows
    assert ["contoso", "rg-scim-contoso", "westeurope", TENANT, "*"] in rows
    assert any(line.startswith("* not the signed-in tenant") for line in out.splitlines())


def test_every_resource_carries_the_product_tag() -> None:
    """main.bicep tags its resources scim-product=scim-func, so `list` finds instances whose
    resource group the tool did not create (azd), by their function app."""
    from .templates import MAIN, code_without_comments

    code = code_without_comments(MAIN)
    tags = code[code.index("var tags = {") : code.index("}", code.index("var tags = {"))]
    assert "'scim-product': 'scim-func'" in tags
    assert code.count("tags: tags") >= 4  # identity, storage, monitoring, keyvault modules
