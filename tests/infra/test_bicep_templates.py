"""Structural checks of infra/*.bicep that need no Bicep CLI (none can be installed here).

The real compiler and linter run in .github/workflows/infra.yml; these tests catch the same classes
of mistakes locally: syntax (pycep-parser), unused parameters, module parameter mismatches, and the
security properties the design promises (identity instead of keys, least-privilege roles).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import deploy, package

from .templates import (
    FUNCTION_APP,
    GRAPH_PERMISSIONS,
    INFRA,
    MAIN,
    app_settings,
    bicep_files,
    body,
    code_without_comments,
    comment_block_above,
    parse,
    resource_source,
    resources_of_type,
)

#: Built-in Azure role definition ids (identical in every tenant) -> role names.
BUILT_IN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}

#: What the app and the deployer actually use; nothing else may be granted.
EXPECTED_ROLES = {
    "Storage Blob Data Owner",  # host storage + Flex deployment container
    "Storage Table Data Contributor",  # the SCIM store
    "Key Vault Secrets User",  # Key Vault references
    "Key Vault Secrets Officer",  # the deploy tool writes and rotates the token
    "Monitoring Metrics Publisher",  # Entra-authenticated App Insights ingestion
}

ALL_BICEP = bicep_files()
MODULES = sorted((INFRA / "modules").glob("*.bicep"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(INFRA)) for p in paths]


@pytest.mark.parametrize("path", ALL_BICEP, ids=_ids(ALL_BICEP))
def test_template_parses(path: Path) -> None:
    """Every template is syntactically valid Bicep (pycep-parser's grammar)."""
    template = parse(path)
    assert template.get("resources") or template.get("modules")


@pytest.mark.parametrize("path", ALL_BICEP, ids=_ids(ALL_BICEP))
def test_no_unused_parameters_or_variables(path: Path) -> None:
    """Mirrors the no-unused-params / no-unused-vars linter rules bicepconfig.json makes errors."""
    template = parse(path)
    code = code_without_comments(path)
    declared = [*template.get("parameters", {}), *template.get("variables", {})]
    unused = [name for name in declared if len(re.findall(rf"\b{re.escape(name)}\b", code)) < 2]
    assert unused == []


@pytest.mark.parametrize("module", sorted(parse(MAIN)["modules"]))
def test_module_parameters_match_declarations(module: str) -> None:
    """main.bicep passes each module every required parameter and no undeclared one."""
    declaration = parse(MAIN)["modules"][module]
    declared = parse(MAIN.parent / declaration["detail"]["path"])["parameters"]
    passed = set(declaration["config"]["params"])
    required = {name for name, p in declared.items() if p["default"] is None}
    assert passed - set(declared) == set(), "passed but not declared"
    assert required - passed == set(), "required but not passed"


def _role_assignments() -> list[tuple[Path, str]]:
    return [
        (path, symbol)
        for path in ALL_BICEP
        for symbol in resources_of_type(parse(path), "Microsoft.Authorization/roleAssignments")
    ]


def _granted_role(path: Path, symbol: str) -> str:
    """The role name behind a role assignment's roleDefinitionId (a variable holding the id)."""
    source = resource_source(path, symbol)
    match = re.search(r"roleDefinitions',\s*(\w+)\)", source)
    assert match, f"{symbol}: roleDefinitionId is not subscriptionResourceId(..., <variable>)"
    role_id = parse(path)["variables"][match.group(1)]["value"]
    return BUILT_IN_ROLES[role_id]


@pytest.mark.parametrize(
    ("path", "symbol"), _role_assignments(), ids=[s for _, s in _role_assignments()]
)
def test_each_role_assignment_is_commented_with_its_role_name(path: Path, symbol: str) -> None:
    """House style: every role assignment says which role it grants, and the comment is true."""
    comment = comment_block_above(path, symbol)
    assert f"// Role: {_granted_role(path, symbol)}." in comment


def test_only_the_roles_the_app_uses_are_granted() -> None:
    """Least privilege: no queue role (HTTP and timer triggers use no queues), nothing broader."""
    granted = {_granted_role(path, symbol) for path, symbol in _role_assignments()}
    assert granted == EXPECTED_ROLES


def test_storage_account_allows_identity_only() -> None:
    """Shared keys off, TLS 1.2, HTTPS only, no public blobs (the issue's storage requirements)."""
    (account,) = resources_of_type(
        parse(INFRA / "modules" / "storage.bicep"), "Microsoft.Storage/storageAccounts"
    ).values()
    properties = body(account)["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["allowBlobPublicAccess"] is False


def test_store_tables_are_created() -> None:
    """The tables scim_core's Table storage layout uses: users, groups, state."""
    storage = parse(INFRA / "modules" / "storage.bicep")
    assert storage["variables"]["tableNames"]["value"] == ["users", "groups", "state"]
    (tables,) = resources_of_type(
        storage, "Microsoft.Storage/storageAccounts/tableServices/tables"
    ).values()
    assert tables["config"]["loop_type"]["detail"]["array_name"] == "tableNames"


def test_function_app_is_flex_consumption_python_with_identity_deployment() -> None:
    """FC1 plan; functionAppConfig with python 3.11, scale settings, UAMI-authenticated package."""
    template = parse(FUNCTION_APP)
    (plan,) = resources_of_type(template, "Microsoft.Web/serverfarms").values()
    assert body(plan)["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    (site,) = resources_of_type(template, "Microsoft.Web/sites").values()
    properties = body(site)["properties"]
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": package.PYTHON_VERSION}
    assert config["deployment"]["storage"]["type"] == "blobContainer"
    assert config["deployment"]["storage"]["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert set(config["scaleAndConcurrency"]) == {
        "instanceMemoryMB",
        "maximumInstanceCount",
        "alwaysReady",
    }
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert properties["httpsOnly"] is True
    assert body(site)["identity"]["type"] == "UserAssigned"


def test_always_ready_targets_the_http_group() -> None:
    """Always-ready instances are configured for the `http` trigger group, and only when asked."""
    source = FUNCTION_APP.read_text()
    assert re.search(r"alwaysReadyHttpInstances > 0 \? \[\s*\{\s*name: 'http'", source)


def test_application_insights_accepts_entra_auth_only() -> None:
    """Local (key) ingestion disabled; the app authenticates as its identity."""
    (component,) = resources_of_type(
        parse(INFRA / "modules" / "monitoring.bicep"), "Microsoft.Insights/components"
    ).values()
    assert body(component)["properties"]["DisableLocalAuth"] is True
    auth = {s["name"]: s["value"] for s in app_settings()}[
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
    ]
    assert auth == "ClientId=${identityClientId};Authorization=AAD"


def test_key_vault_uses_rbac() -> None:
    (vault,) = resources_of_type(
        parse(INFRA / "modules" / "keyvault.bicep"), "Microsoft.KeyVault/vaults"
    ).values()
    assert body(vault)["properties"]["enableRbacAuthorization"] is True


def test_templates_create_no_secrets() -> None:
    """The token is written by the deploy tool only, so redeploying never resets it."""
    for path in ALL_BICEP:
        assert resources_of_type(parse(path), "Microsoft.KeyVault/vaults/secrets") == {}


def test_main_outputs_what_the_deploy_tool_and_entra_need() -> None:
    outputs = parse(MAIN)["outputs"]
    assert {"scimTenantUrl", "functionAppName", "keyVaultName", "secretName"} <= set(outputs)
    assert "/scim/v2" in MAIN.read_text().split("output scimTenantUrl", 1)[1].splitlines()[0]


def test_secret_names_agree_with_the_deploy_tool() -> None:
    """One source of truth for secret names: main.bicep's variables equal the tool's."""
    variables = parse(MAIN)["variables"]
    assert variables["primarySecretName"]["value"] == deploy.PRIMARY_SECRET
    assert variables["secondarySecretName"]["value"] == deploy.SECONDARY_SECRET


def test_graph_permissions_use_the_microsoft_graph_extension() -> None:
    """`extension microsoftGraphV1`, resolved by bicepconfig.json to the GA v1.0 types."""
    assert "microsoftGraphV1" in parse(GRAPH_PERMISSIONS)["extensions"]
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    assert config["extensions"]["microsoftGraphV1"].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )


def test_graph_permissions_grant_user_read_all_and_optionally_group_member_read_all() -> None:
    """User.Read.All unless write-back asks for User.ReadWrite.All instead (issue 14);
    GroupMember.Read.All only behind a bool parameter; both flags default false."""
    template = parse(GRAPH_PERMISSIONS)
    assignments = resources_of_type(template, "Microsoft.Graph/appRoleAssignedTo")
    assert set(assignments) == {"userReadAll", "userReadWriteAll", "groupMemberReadAll"}
    assert assignments["groupMemberReadAll"]["config"]["condition"] == "grantGroupMemberReadAll"
    assert assignments["userReadWriteAll"]["config"]["condition"] == "grantUserReadWriteAll"
    read_only = json.dumps(assignments["userReadAll"]["config"]["condition"])
    assert "grantUserReadWriteAll" in read_only and "not" in read_only.lower()
    for name in ("grantGroupMemberReadAll", "grantUserReadWriteAll"):
        flag = template["parameters"][name]
        assert (flag["type"], flag["default"]) == ("bool", False)
    source = GRAPH_PERMISSIONS.read_text()
    assert "role.value == 'User.Read.All'" in source
    assert "role.value == 'User.ReadWrite.All'" in source
    assert "role.value == 'GroupMember.Read.All'" in source
    for assignment in assignments.values():
        assert body(assignment)["resourceId"] == {
            "operator": {
                "type": "property_accessor",
                "operands": {"operand_1": "microsoftGraph", "operand_2": "id"},
            }
        }


# --- issue 11: Flex Consumption limits, zone redundancy, deprecated site properties ----------


def _decorators(parameter: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d["argument"] for d in parameter["decorators"]}


@pytest.mark.parametrize("path", [MAIN, FUNCTION_APP], ids=["main", "functionapp"])
def test_maximum_instance_count_stays_within_flex_limits(path: Path) -> None:
    """Learn, "Azure Functions Flex Consumption plan hosting", Considerations: "The lowest
    maximum scale is currently 40. The highest currently supported value is 1000." A value
    outside fails at deploy time in the customer's subscription; the decorators fail it first."""
    limits = _decorators(parse(path)["parameters"]["maximumInstanceCount"])
    assert (limits["min_value"], limits["max_value"]) == (40, 1000)


def _evaluate(expression: Any, env: dict[str, Any]) -> Any:
    """The few Bicep expression forms the SKU choice uses (pycep's parse tree)."""
    if isinstance(expression, str):
        return env.get(expression, expression)
    operator = expression["operator"]
    operands = operator["operands"]
    if operator["type"] == "conditional":
        branch = "true_value" if _evaluate(operands["condition"], env) else "false_value"
        return _evaluate(operands[branch], env)
    if operator["type"] == "index_accessor":
        return _evaluate(operands["operand_1"], env)[_evaluate(operands["operand_2"], env)]
    raise AssertionError(f"unexpected expression {operator['type']}")


STORAGE_SKUS = _decorators(parse(MAIN)["parameters"]["storageSkuName"])["allowed"]


@pytest.mark.parametrize("sku", STORAGE_SKUS)
@pytest.mark.parametrize("zone_redundant", [True, False], ids=["zone-redundant", "zonal"])
def test_zone_redundancy_forces_zone_redundant_host_storage(sku: str, zone_redundant: bool) -> None:
    """A zone-redundant Flex app needs ZRS (or GZRS) host storage (Learn, "Reliability in Azure
    Functions"). zoneRedundant turns LRS into ZRS and GRS into GZRS; off, the choice stands."""
    template = parse(MAIN)
    env = {
        "zoneRedundant": zone_redundant,
        "storageSkuName": sku,
        "zoneRedundantSkus": template["variables"]["zoneRedundantSkus"]["value"],
    }
    chosen = _evaluate(template["variables"]["hostStorageSkuName"]["value"], env)
    assert template["modules"]["storage"]["config"]["params"]["skuName"] == "hostStorageSkuName"
    if zone_redundant:
        assert chosen in {"Standard_ZRS", "Standard_GZRS"}
        assert ("G" in chosen.split("_")[1]) == ("G" in sku.split("_")[1])  # geo kept
    else:
        assert chosen == sku


#: Site properties the Flex Consumption plan deprecates (Learn, "App settings reference for Azure
#: Functions", Flex Consumption plan deprecations).
FLEX_DEPRECATED_SITE_PROPERTIES = {
    "ftpsState",
    "use32BitWorkerProcess",
    "isReserved",
    "IsXenon",
    "windowsFxVersion",
    "linuxFxVersion",
    "alwaysOn",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "containerSize",
    "javaVersion",
    "powerShellVersion",
    "netFrameworkVersion",
}


def test_site_sets_no_property_flex_consumption_deprecates() -> None:
    (site,) = resources_of_type(parse(FUNCTION_APP), "Microsoft.Web/sites").values()
    properties = body(site)["properties"]
    used = {key.lower() for key in [*properties, *properties["siteConfig"]]}
    assert used & {name.lower() for name in FLEX_DEPRECATED_SITE_PROPERTIES} == set()


def test_ftp_publishing_stays_off_without_ftps_state() -> None:
    """ftpsState is gone (deprecated on Flex); FTP basic-auth publishing is still refused."""
    policies = resources_of_type(
        parse(FUNCTION_APP), "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {
        "scm": False,
        "ftp": False,
    }


def test_graph_client_state_secret_name_agrees_with_the_deploy_tool() -> None:
    variables = parse(MAIN)["variables"]
    assert variables["graphClientStateSecretName"]["value"] == deploy.GRAPH_CLIENT_STATE_SECRET


def test_app_token_secret_names_agree_with_the_deploy_tool() -> None:
    variables = parse(MAIN)["variables"]
    assert variables["appTokenSecretName"]["value"] == deploy.APP_TOKEN_SECRET
    assert variables["appTokenSecondarySecretName"]["value"] == deploy.APP_TOKEN_SECONDARY_SECRET


def test_graph_client_state_is_no_template_parameter() -> None:
    """The clientState is generated by the deploy tool into Key Vault, never passed in."""
    for path in (MAIN, FUNCTION_APP):
        assert "graphClientState" not in parse(path)["parameters"]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("contoso", True),
        ("ab", True),
        ("a" * 20, True),
        ("fabrikam-eu-2", True),
        ("a", False),
        ("a" * 21, False),
        ("contoso_dev", False),
        ("Contoso", False),
        ("-contoso", False),
        ("contoso-", False),
    ],
    ids=[
        "plain", "shortest", "longest", "hyphens", "too-short", "too-long", "underscore",
        "upper-case", "leading-hyphen", "trailing-hyphen",
    ],
)  # fmt: skip
def test_customer_name_rule_matches_the_template(name: str, valid: bool) -> None:
    """The deploy tool's rule is the template's @minLength/@maxLength plus the characters
    storage account and Key Vault names allow (Bicep has no pattern decorator)."""
    limits = _decorators(parse(MAIN)["parameters"]["customerName"])
    assert (limits["min_length"], limits["max_length"]) == (2, 20)
    assert bool(deploy.CUSTOMER_NAME.match(name)) is valid


APP_ROLES = INFRA / "app-roles.bicep"


def test_app_roles_are_the_scopes_the_code_checks() -> None:
    """app-roles.bicep defines one application-assignable app role per scope of
    scim_core/principal.py, so the `roles` claim Entra issues is what the router reads."""
    from scim_core.principal import SCOPES

    template = parse(APP_ROLES)
    assert "microsoftGraphV1" in template["extensions"]
    source = APP_ROLES.read_text()
    values = set(re.findall(r"^\s+value: '([^']+)'$", source, re.MULTILINE))
    assert values == set(SCOPES)
    assert "'Application'" in source
    assert set(resources_of_type(template, "Microsoft.Graph/appRoleAssignedTo")) == {"assignments"}
    assert "appRoleAssignmentRequired: true" in source
