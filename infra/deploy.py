"""Deploy and operate one customer's SCIM instance.

    python -m infra.deploy deploy CUSTOMER --location REGION --tenant-id GUID
        [--subscription ID] [--dry-run]
    python -m infra.deploy rotate-token CUSTOMER --stage add|retire [--dry-run]
    python -m infra.deploy graph-permissions CUSTOMER [--group-members] [--writeback] [--dry-run]
    python -m infra.deploy teardown CUSTOMER [--yes] [--dry-run]
    python -m infra.deploy ensure-token CUSTOMER [--resource-group RG]   (azd postprovision hook)
    python -m infra.deploy check-name NAME                            (azd preprovision hook)
    python -m infra.deploy list [--subscription ID]
    python -m infra.deploy status (--all | CUSTOMER) [--max-token-age DAYS]

Every command on an instance checks that ``az`` is signed in to the instance's Entra tenant
(``--tenant-id``, else the ``scim-tenant`` tag of its resource group; infra/instances.py).
``deploy`` remembers the location and the tenant of an existing resource group, and reads
``CUSTOMER.bicepparam`` from ``--customers-dir`` / ``$SCIM_CUSTOMERS_DIR`` (default
``infra/customers``), refusing a file whose customerName differs from its name (infra/params.py).

Each customer has ``infra/customers/CUSTOMER.bicepparam`` and its own resource group
(``rg-scim-CUSTOMER`` unless ``--resource-group`` says otherwise). ``--dry-run`` prints every
command without running any. The SCIM token is generated here, written to Key Vault through a
private temp file, and shown once at the end; it never appears in a command line, a log or a
deployment.
See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import fleet, instances, package, params, permissions, smoke
from .azcli import GENERATED, AzError, AzureCli

INFRA = Path(__file__).resolve().parent
ROOT = INFRA.parent
MAIN_TEMPLATE = INFRA / "main.bicep"
GRAPH_TEMPLATE = INFRA / "graph-permissions.bicep"
CUSTOMERS = INFRA / "customers"

#: Deployment names (stable, so each run updates the same deployment record).
MAIN_DEPLOYMENT = "scim-main"
GRAPH_DEPLOYMENT = "scim-graph-permissions"

#: Key Vault secret names; they match the primarySecretName/secondarySecretName/
#: graphClientStateSecretName vars of main.bicep.
PRIMARY_SECRET = "scim-bearer-token"
SECONDARY_SECRET = "scim-bearer-token-secondary"
GRAPH_CLIENT_STATE_SECRET = "graph-client-state"
#: The line-of-business app's own tokens (appTokenSecretName/appTokenSecondarySecretName of
#: main.bicep; docs/app-guide.md). Separate from Entra's, so rotating one never breaks the other.
APP_TOKEN_SECRET = "scim-app-token"
APP_TOKEN_SECONDARY_SECRET = "scim-app-token-secondary"
#: Provisioning events (docs/events.md): the key that signs the SETs and the bearer token the
#: RFC 8935 push sends (eventsSigningKeySecretName/eventsPushTokenSecretName of main.bicep).
#: Generated once, like the tokens, whether or not events are on yet, so turning them on (or
#: push) later needs no secret handling; the app refers to them only when they are used.
EVENTS_SIGNING_KEY_SECRET = "scim-events-signing-key"
EVENTS_PUSH_TOKEN_SECRET = "scim-events-push-token"

#: What graph-permissions does in Azure besides Microsoft Graph: it lists the resource group's
#: resources and creates a deployment there. "To deploy a Bicep file, you need ... access to all
#: operations on the Microsoft.Resources/deployments resource type" (Microsoft Learn,
#: "Permissions and privileges to deploy Microsoft Graph Bicep templates",
#: https://learn.microsoft.com/graph/templates/concept-permissions-and-privileges).
GRAPH_PERMISSIONS_ACTIONS = (
    "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
    "Microsoft.Web/sites/read",
    "Microsoft.Resources/deployments/read",
    "Microsoft.Resources/deployments/write",
    "Microsoft.Resources/deployments/validate/action",
)

#: What teardown does: delete the resource group (resource-group scope) and purge the
#: soft-deleted vault, which then lives under the subscription, not the group. "Purge ...
#: Microsoft.KeyVault/locations/deletedVaults/purge/action" (Microsoft Learn, "Azure Key Vault
#: soft-delete overview", Permissions required,
#: https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview). Owner or
#: Contributor on the subscription hold it; Key Vault Contributor excludes it (NotActions), and
#: Owner on a pre-created resource group does not reach the subscription scope.
TEARDOWN_GROUP_ACTIONS = ("Microsoft.Resources/subscriptions/resourceGroups/delete",)
TEARDOWN_PURGE_ACTIONS = ("Microsoft.KeyVault/locations/deletedVaults/purge/action",)

CUSTOMER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,18}[a-z0-9]$")  # 2-20, as main.bicep

#: Appended to the printed Tenant URL: the RFC-compliant PATCH dialect docs/entra-setup.md
#: recommends (Microsoft Learn, "Known issues and resolutions with SCIM 2.0 protocol compliance
#: of the Microsoft Entra user provisioning service").
DIALECT_FLAG = "?aadOptscim062020"


def new_token(az: AzureCli) -> str:
    """A bearer token: 48 random bytes, URL-safe base64 (64 characters). Dry-run makes none."""
    return GENERATED if az.dry_run else secrets.token_urlsafe(48)


def new_signing_key(az: AzureCli) -> str:
    """A P-256 private key as unencrypted PKCS#8 PEM (the SETs are signed ES256: RFC 7518
    §3.4). Made in memory and handed to Key Vault through a private temp file (``set_secret``),
    never shown or written elsewhere. Dry-run makes none."""
    if az.dry_run:
        return GENERATED
    from scim_core.events.tokens import new_signing_key as new_pem

    return new_pem()


@dataclass(frozen=True)
class Instance:
    """The deployed resources of one customer instance."""

    resource_group: str
    function_app: str
    key_vault: str
    managed_identity: str
    tenant_url: str

    @classmethod
    def placeholder(cls, resource_group: str) -> Instance:
        return cls(
            resource_group,
            "<functionAppName>",
            "<keyVaultName>",
            "<managedIdentityName>",
            "<scimTenantUrl>",
        )

    @classmethod
    def from_outputs(cls, resource_group: str, outputs: dict[str, dict[str, str]]) -> Instance:
        return cls(
            resource_group=resource_group,
            function_app=outputs["functionAppName"]["value"],
            key_vault=outputs["keyVaultName"]["value"],
            managed_identity=outputs["managedIdentityName"]["value"],
            tenant_url=outputs["scimTenantUrl"]["value"],
        )


def resource_group_for(args: argparse.Namespace) -> str:
    return args.resource_group or f"rg-scim-{args.customer}"


def find_instance(az: AzureCli, resource_group: str) -> Instance:
    """Find the instance's resources by type, so instances deployed by azd are found too."""
    resources = az.run_json(
        "resource list --resource-group {rg} --query {query}",
        rg=resource_group,
        query="[].{name: name, type: type}",
        placeholder=[],
    )

    def one(resource_type: str, placeholder: str) -> str:
        if az.dry_run:
            return placeholder
        names: list[str] = [
            r["name"] for r in resources if r["type"].lower() == resource_type.lower()
        ]
        if len(names) != 1:
            raise SystemExit(
                f"Expected one {resource_type} in {resource_group}, found {len(names)}."
            )
        return names[0]

    function_app = one("Microsoft.Web/sites", "<functionAppName>")
    host = az.run(
        "functionapp show --resource-group {rg} --name {app} --query defaultHostName --output tsv",
        rg=resource_group,
        app=function_app,
        placeholder="<defaultHostName>",
    )
    return Instance(
        resource_group=resource_group,
        function_app=function_app,
        key_vault=one("Microsoft.KeyVault/vaults", "<keyVaultName>"),
        managed_identity=one(
            "Microsoft.ManagedIdentity/userAssignedIdentities", "<managedIdentityName>"
        ),
        tenant_url=f"https://{host}/scim/v2",
    )


# --- tokens ------------------------------------------------------------------------------------


def restart(az: AzureCli, instance: Instance) -> None:
    """Restart so the app re-reads its (versionless) Key Vault references at once."""
    az.run(
        "functionapp restart --resource-group {rg} --name {app}",
        rg=instance.resource_group,
        app=instance.function_app,
    )


def ensure_tokens(az: AzureCli, instance: Instance) -> tuple[str | None, bool]:
    """Create the token secrets that do not exist yet.

    Returns the newly generated primary token (``None`` if one existed) and whether anything was
    written, in which case the caller restarts the app.

    An existing primary token is kept, so re-running a deploy never breaks a working Entra
    connection. The secondary slot must always hold a secret too: an app setting whose Key Vault
    reference cannot be resolved keeps the literal ``@Microsoft.KeyVault(...)`` text, which would
    then be an accepted, guessable token. An idle secondary slot holds a random value nobody sees.
    """
    names = az.until_rbac_allows(
        lambda: az.run_json(
            "keyvault secret list --vault-name {vault} --query [].name",
            vault=instance.key_vault,
            placeholder=[],
        )
    )
    token = None
    if PRIMARY_SECRET not in names:
        token = new_token(az)
        az.set_secret(instance.key_vault, PRIMARY_SECRET, token, role="primary")
    if SECONDARY_SECRET not in names:
        az.set_secret(instance.key_vault, SECONDARY_SECRET, new_token(az), role="disabled")
    if GRAPH_CLIENT_STATE_SECRET not in names:
        # The clientState Graph echoes in change notifications: a random value only the app and
        # Graph see. Like the secondary slot, it must exist before the app resolves its reference.
        az.set_secret(
            instance.key_vault, GRAPH_CLIENT_STATE_SECRET, new_token(az), role="client-state"
        )
    # The app's token: generated here, never shown; the app team reads it from Key Vault
    # (docs/app-guide.md). Both slots must exist for the same reason as Entra's secondary.
    if APP_TOKEN_SECRET not in names:
        az.set_secret(instance.key_vault, APP_TOKEN_SECRET, new_token(az), role="app-primary")
    if APP_TOKEN_SECONDARY_SECRET not in names:
        az.set_secret(
            instance.key_vault, APP_TOKEN_SECONDARY_SECRET, new_token(az), role="disabled"
        )
    # The events' signing key and push token (docs/events.md): the app team gets the public
    # key from GET /Events/keys and the push token from Key Vault, as its own token.
    if EVENTS_SIGNING_KEY_SECRET not in names:
        az.set_secret(
            instance.key_vault, EVENTS_SIGNING_KEY_SECRET, new_signing_key(az), role="signing"
        )
    if EVENTS_PUSH_TOKEN_SECRET not in names:
        az.set_secret(instance.key_vault, EVENTS_PUSH_TOKEN_SECRET, new_token(az), role="push")
    created = {
        PRIMARY_SECRET,
        SECONDARY_SECRET,
        GRAPH_CLIENT_STATE_SECRET,
        APP_TOKEN_SECRET,
        APP_TOKEN_SECONDARY_SECRET,
        EVENTS_SIGNING_KEY_SECRET,
        EVENTS_PUSH_TOKEN_SECRET,
    } - set(names)
    return token, bool(created)


def show_credentials(az: AzureCli, tenant_url: str, token: str | None) -> None:
    az.echo("")
    az.echo("Paste into Entra (Enterprise app > Provisioning > Admin Credentials):")
    az.echo(f"  Tenant URL:   {tenant_url}{DIALECT_FLAG}")
    if token is None:
        az.echo(
            "  Secret Token: unchanged (the existing token was kept; rotate-token issues a new one)"
        )
    else:
        az.echo(f"  Secret Token: {token}")
        az.echo(
            "  The token is shown this once. It is stored in Key Vault; do not keep other copies."
        )


# --- commands ----------------------------------------------------------------------------------


def cmd_deploy(az: AzureCli, args: argparse.Namespace) -> None:
    params = _checked_parameter_file(args)
    resource_group = resource_group_for(args)
    _remember_from_group(az, args, resource_group)

    signed_in_tenant = az.run(
        "account show --query tenantId --output tsv", placeholder=args.tenant_id
    )
    if signed_in_tenant.lower() != args.tenant_id.lower():
        raise SystemExit(
            f"The Azure CLI is signed in to tenant {signed_in_tenant}, not {args.tenant_id}: "
            f"run 'az login --tenant {args.tenant_id}'. The instance's managed identity can "
            "only read Graph in the tenant of its subscription."
        )
    deployer = args.deployer_object_id or az.run(
        "ad signed-in-user show --query id --output tsv",
        arm=False,
        placeholder="<signed-in-user-object-id>",
    )

    az.run(
        "group create --name {rg} --location {location} --tags scim-customer={customer}"
        " {product_tag} {tenant_tag} --output none",
        rg=resource_group,
        location=args.location,
        customer=args.customer,
        product_tag=f"{instances.PRODUCT_TAG}={instances.PRODUCT}",
        tenant_tag=f"{instances.TENANT_TAG}={args.tenant_id}",
    )
    # No --template-file: the .bicepparam's `using` line names main.bicep, and the Azure CLI
    # refuses both together ("Only a .bicep file is allowed with a .bicepparam file"; Azure CLI
    # 2.53.0+ with Bicep CLI 0.22.X+, Microsoft Learn, "Deploy Bicep files with the Azure CLI",
    # https://learn.microsoft.com/azure/azure-resource-manager/bicep/deploy-cli#bicep-parameters-files).
    # The second --parameters adds inline overrides, which the CLI hands to `bicep build-params`
    # in BICEP_PARAMETERS_OVERRIDES: Bicep CLI 0.22.6 or newer. Overridden parameters need
    # defaults in main.bicep (the CLI builds the file once without the overrides first).
    outputs = az.run_json(
        "deployment group create --resource-group {rg} --name {deployment}"
        " --parameters {params}"
        " --parameters entraTenantId={tenant} deployerPrincipalId={deployer}"
        " deployerPrincipalType={deployer_type} --query properties.outputs",
        rg=resource_group,
        deployment=MAIN_DEPLOYMENT,
        params=str(params),
        tenant=args.tenant_id,
        deployer=deployer,
        deployer_type=args.deployer_type,
    )
    instance = (
        Instance.placeholder(resource_group)
        if az.dry_run
        else Instance.from_outputs(resource_group, outputs)
    )

    token, created = ensure_tokens(az, instance)
    if created:
        restart(az, instance)
    try:
        publish(az, args.customer, instance)
        if az.dry_run:
            az.echo(
                f"(then: Test Connection probe GET {instance.tenant_url}/Users"
                f'?filter={smoke.USER_MATCHING_ATTRIBUTE} eq "<random guid>" and /Groups'
                '?filter=displayName eq "<random guid>")'
            )
        elif not args.skip_smoke_test:
            probe_token = token or az.get_secret(instance.key_vault, PRIMARY_SECRET)[0]
            az.echo(f"Smoke test (Entra's Test Connection) against {instance.tenant_url} ...")
            smoke.wait_until_ready(instance.tenant_url, probe_token, log=az.echo)
            az.echo("Smoke test passed: 200, totalResults 0.")
    finally:
        # Shown even when publishing or the smoke test failed: the token is already in Key Vault.
        show_credentials(az, instance.tenant_url, token)
    az.echo("")
    az.echo(
        f"Next: an Entra Privileged Role Administrator runs "
        f"'python -m infra.deploy graph-permissions {args.customer}' (Graph enrichment), "
        "then follow docs/entra-setup.md."
    )


def _checked_parameter_file(args: argparse.Namespace) -> Path:
    """The customer's .bicepparam, refused when it would deploy the wrong names (params.py)."""
    return params.parameter_file(args.customer, params.customers_dir(args.customers_dir))


def _remember_from_group(az: AzureCli, args: argparse.Namespace, resource_group: str) -> None:
    """Fill --location and --tenant-id from an existing resource group (its location and its
    scim-tenant tag); refuse a --location that contradicts it; require both for a new one."""
    group = instances.existing_group(az, resource_group)
    if group is not None:
        if args.location and args.location.lower() != group.location.lower():
            raise SystemExit(
                f"{resource_group} is in {group.location}, not {args.location}: drop --location "
                "(the group's location is used), or choose another --resource-group."
            )
        args.location = args.location or group.location
        args.tenant_id = args.tenant_id or group.tenant
    missing = [
        o for o, v in (("--location", args.location), ("--tenant-id", args.tenant_id)) if not v
    ]
    if missing:
        raise SystemExit(
            f"{' and '.join(missing)} required: {resource_group} does not exist yet (or records "
            "no tenant)."
        )


def cmd_list(az: AzureCli, args: argparse.Namespace) -> None:
    """Every instance in the subscription, with the tenant each serves (tags, instances.py)."""
    signed_in = instances.signed_in_tenant(az, args.tenant_id)
    found = instances.list_instances(az)
    if not found:
        az.echo("No SCIM instances (resource groups tagged scim-product=scim-func) found.")
        return
    rows = [["customer", "resource group", "location", "tenant"]]
    for item in found:
        other = item.tenant not in ("?", signed_in)
        rows.append(
            [
                item.customer,
                item.resource_group,
                item.location,
                item.tenant + (" *" if other else ""),
            ]
        )
    for line in instances.table(rows):
        az.echo(line)
    if any(row[3].endswith(" *") for row in rows[1:]):
        az.echo(f"* not the signed-in tenant ({signed_in}): 'az login --tenant <id>' to manage it.")


def cmd_status(az: AzureCli, args: argparse.Namespace) -> None:
    """One table of every instance's health (the app's status route, token ages from Key
    Vault) and the links to their workbooks; instances of another tenant are marked."""
    if args.all == bool(args.customer):
        raise SystemExit("name one customer, or --all")
    signed_in = instances.signed_in_tenant(az, args.tenant_id)
    if args.all:
        targets = [(i.customer, i.resource_group, i.tenant) for i in instances.list_instances(az)]
    else:
        group = resource_group_for(args)
        tags = az.run_json("group show --name {rg} --query tags", rg=group, placeholder={}) or {}
        targets = [(args.customer, group, tags.get(instances.TENANT_TAG, "?"))]
    now = datetime.now(UTC)
    healths: list[fleet.Health] = []
    for customer, group, tenant in targets:
        if tenant not in ("?", signed_in):
            healths.append(
                fleet.Health(customer, None, (None, None), None, f"tenant {tenant}: az login")
            )
            continue

        def probe(customer: str = customer, group: str = group) -> fleet.Health:
            instance = find_instance(az, group)
            token, _ = az.get_secret(instance.key_vault, PRIMARY_SECRET)
            ages = (
                fleet.secret_age_days(az, instance.key_vault, PRIMARY_SECRET, now),
                fleet.secret_age_days(az, instance.key_vault, SECONDARY_SECRET, now),
            )
            link = fleet.workbook_link(az, group, signed_in, MAIN_DEPLOYMENT)
            if az.dry_run:
                return fleet.Health(customer, None, ages, link, "dry run: status not read")
            base = instance.tenant_url.removesuffix("/scim/v2").split("://", 1)[1]
            status = fleet.fetch_status(f"{fleet.STATUS_SCHEME}://{base}/status", token)
            return fleet.Health(customer, status, ages, link)

        healths.append(fleet.guarded(customer, probe))
    if not healths:
        az.echo("No SCIM instances (resource groups tagged scim-product=scim-func) found.")
        return
    fleet.report(az, healths, args.max_token_age, instances.table)


def publish(az: AzureCli, customer: str, instance: Instance) -> None:
    """Build the zip (code + Linux wheels) and deploy it to the Flex Consumption app."""
    with tempfile.TemporaryDirectory(prefix=f"scim-{customer}-") as build_dir:
        build_path = Path("<build dir>") if az.dry_run else Path(build_dir)
        archive = package.build(az, ROOT, build_path, f"scim-{customer}")
        # --build-remote false, on purpose: the zip already holds the Linux wheels that were built
        # and tested here, and that package is what must run. On Flex Consumption the Azure CLI
        # turns a remote build on for Python unless told otherwise (it sends RemoteBuild=true when
        # --build-remote is omitted), and Microsoft recommends remote build for Python there
        # (Microsoft Learn, "Create and manage function apps in the Flex Consumption plan",
        # Deploy your code project); a remote build would reinstall requirements.txt from PyPI.
        # The flag: Microsoft Learn, "az functionapp deployment source config-zip",
        # --build-remote {false, true}. azd (azure.yaml) does build remotely; docs/deploy.md.
        az.run(
            "functionapp deployment source config-zip --resource-group {rg} --name {app}"
            " --src {zip} --build-remote false --output none",
            rg=instance.resource_group,
            app=instance.function_app,
            zip=str(archive),
        )


def cmd_ensure_token(az: AzureCli, args: argparse.Namespace) -> None:
    """Create missing token secrets, then restart so the app re-resolves its Key Vault references
    (also the fix when a reference failed because a role assignment was not yet in effect)."""
    instances.check_instance_tenant(az, resource_group_for(args), args.tenant_id)
    instance = find_instance(az, resource_group_for(args))
    token, _ = ensure_tokens(az, instance)
    restart(az, instance)
    show_credentials(az, instance.tenant_url, token)


def cmd_rotate_token(az: AzureCli, args: argparse.Namespace) -> None:
    instances.check_instance_tenant(az, resource_group_for(args), args.tenant_id)
    instance = find_instance(az, resource_group_for(args))
    if args.stage == "add":
        token = new_token(az)
        az.set_secret(instance.key_vault, SECONDARY_SECRET, token, role="pending")
        restart(az, instance)
        az.echo("")
        az.echo(
            "Both the old and the new token are accepted now. In Entra, paste the new Secret Token,"
        )
        az.echo("click Test Connection and Save; then run this command again with --stage retire.")
        az.echo(f"  New Secret Token: {token}")
        az.echo("  The token is shown this once.")
        return
    value, role = az.get_secret(instance.key_vault, SECONDARY_SECRET)
    if role != "pending":
        raise SystemExit("The secondary slot holds no pending token: run --stage add first.")
    az.set_secret(instance.key_vault, PRIMARY_SECRET, value, role="primary")
    az.set_secret(instance.key_vault, SECONDARY_SECRET, new_token(az), role="disabled")
    restart(az, instance)
    az.echo("")
    az.echo("The new token is now the primary one; the old token is no longer accepted.")


def cmd_graph_permissions(az: AzureCli, args: argparse.Namespace) -> None:
    resource_group = resource_group_for(args)
    instances.check_instance_tenant(az, resource_group, args.tenant_id)
    az.echo(
        "Needs an Entra Privileged Role Administrator (app role assignments on Microsoft Graph)"
        f" and an Azure role on {resource_group} that reads its resources and creates"
        " deployments (Contributor, or a custom role with Microsoft.Resources/deployments/*)."
    )
    permissions.require(
        az,
        f"/subscriptions/{permissions.subscription_id(az)}/resourceGroups/{resource_group}",
        GRAPH_PERMISSIONS_ACTIONS,
        "graph-permissions lists the instance's resources and creates a deployment in its "
        "resource group, so besides the Entra role it needs an Azure role there: Contributor "
        "(or a custom role with Microsoft.Resources/deployments/* and read access) on "
        f"{resource_group}. Ask the subscription's Owner to assign it, then run this again.",
    )
    instance = find_instance(az, resource_group)
    az.run(
        "deployment group create --resource-group {rg} --name {deployment}"
        " --template-file {template} --parameters managedIdentityName={identity}"
        " grantGroupMemberReadAll={group_members} grantUserReadWriteAll={writeback}"
        " --output none",
        rg=instance.resource_group,
        deployment=GRAPH_DEPLOYMENT,
        template=str(GRAPH_TEMPLATE),
        identity=instance.managed_identity,
        group_members="true" if args.group_members else "false",
        writeback="true" if args.writeback else "false",
    )


def cmd_teardown(az: AzureCli, args: argparse.Namespace) -> None:
    resource_group = resource_group_for(args)
    instances.check_instance_tenant(az, resource_group, args.tenant_id)
    if not (args.yes or az.dry_run):
        answer = input(
            f"This deletes resource group {resource_group} and all SCIM data of "
            f"'{args.customer}'. Type the customer name to confirm: "
        )
        if answer.strip() != args.customer:
            raise SystemExit("Not confirmed; nothing deleted.")
    instance = find_instance(az, resource_group)
    # Both checks before anything is deleted: a group deleted without its vault purged leaves a
    # soft-deleted vault that blocks redeploying the customer under the same names for 7 days.
    subscription = f"/subscriptions/{permissions.subscription_id(az)}"
    permissions.require(
        az,
        f"{subscription}/resourceGroups/{resource_group}",
        TEARDOWN_GROUP_ACTIONS,
        f"teardown deletes {resource_group}: it needs Owner or Contributor on it.",
    )
    if not args.keep_vault:
        permissions.require(
            az,
            subscription,
            TEARDOWN_PURGE_ACTIONS,
            "teardown purges the soft-deleted Key Vault, which then belongs to the subscription, "
            "not the resource group: it needs Owner or Contributor on the subscription (or a "
            "custom role with Microsoft.KeyVault/locations/deletedVaults/purge/action there). "
            "Owner on the resource group is not enough, and Key Vault Contributor excludes "
            "purging. Run it as someone who holds that, or pass --keep-vault to delete the "
            "group only (the vault then stays soft-deleted for 7 days, and redeploying this "
            "customer into the same resource group needs it recovered or purged first).",
        )
    az.run("group delete --name {rg} --yes", rg=resource_group)
    if args.keep_vault:
        az.echo(f"Key Vault {instance.key_vault} stays soft-deleted for 7 days (--keep-vault).")
    else:
        # The vault stays soft-deleted for 7 days and would block a redeploy under the same name.
        az.run("keyvault purge --name {vault}", vault=instance.key_vault)
    az.echo(
        f"Deleted {resource_group}. Remove the enterprise app (or its provisioning) in Entra too."
    )


def cmd_check_name(az: AzureCli, args: argparse.Namespace) -> None:
    """azd preprovision hook: the azd environment name becomes customerName, so check it before
    azd provisions anything (main.bicep cannot: Bicep has no pattern decorator)."""
    name = args.name
    if not CUSTOMER_NAME.match(name):
        raise SystemExit(
            f"The azd environment name {name!r} becomes customerName, which is part of the "
            f"storage account, Key Vault and Function App names: {CUSTOMER_NAME_RULE}. "
            "Create an environment with such a name (azd env new <name>) and select it."
        )
    az.echo(f"Customer name {name!r} is valid.")


# --- command line ------------------------------------------------------------------------------

CUSTOMER_NAME_RULE = (
    "2-20 lowercase letters, digits and inner hyphens (no underscores, no upper case)"
)


def _customer(value: str) -> str:
    if not CUSTOMER_NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{CUSTOMER_NAME_RULE}; it is part of Azure resource names"
        )
    return value


def _tenant_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError("the Entra tenant id is a GUID") from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m infra.deploy", description=__doc__.split("\n\n")[0]
    )
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "customer", type=_customer, help="customer name (infra/customers/<customer>.bicepparam)"
        )
        sub.add_argument("--resource-group", help="default: rg-scim-<customer>")
        sub.add_argument(
            "--subscription", help="Azure subscription (default: the az CLI's current one)"
        )
        sub.add_argument("--dry-run", action="store_true", help="print the commands, run none")
        sub.add_argument(
            "--tenant-id",
            type=_tenant_id,
            help="the customer's Entra tenant id; az must be signed in to it (default: the "
            "scim-tenant tag of the resource group; required for a new instance)",
        )
        return sub

    deploy = command("deploy", "Create or update the instance, publish the code, smoke-test it.")
    deploy.add_argument(
        "--location",
        help="Azure region with Flex Consumption, e.g. westeurope (default: the existing "
        "resource group's; required for a new instance)",
    )
    deploy.add_argument(
        "--customers-dir",
        help=f"directory of the <customer>.bicepparam files (default: ${params.DIR_SETTING} "
        "or infra/customers)",
    )
    deploy.add_argument(
        "--deployer-object-id",
        help="object id that gets Key Vault Secrets Officer (default: the signed-in user)",
    )
    deploy.add_argument(
        "--deployer-type", choices=("User", "ServicePrincipal", "Group"), default="User"
    )
    deploy.add_argument("--skip-smoke-test", action="store_true")
    deploy.set_defaults(handler=cmd_deploy)

    rotate = command(
        "rotate-token", "Rotate the SCIM bearer token without downtime (add, then retire)."
    )
    rotate.add_argument("--stage", required=True, choices=("add", "retire"))
    rotate.set_defaults(handler=cmd_rotate_token)

    graph = command(
        "graph-permissions", "Grant the instance's identity Graph User.Read.All (admin only)."
    )
    graph.add_argument(
        "--group-members", action="store_true", help="also grant GroupMember.Read.All"
    )
    graph.add_argument(
        "--writeback",
        action="store_true",
        help="grant User.ReadWrite.All instead of User.Read.All (GRAPH_WRITEBACK)",
    )
    graph.set_defaults(handler=cmd_graph_permissions)

    teardown = command("teardown", "Delete the customer's resource group and purge its Key Vault.")
    teardown.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    teardown.add_argument(
        "--keep-vault",
        action="store_true",
        help="do not purge the soft-deleted Key Vault (purging needs a subscription-scope role)",
    )
    teardown.set_defaults(handler=cmd_teardown)

    ensure = command("ensure-token", "Create the token secrets if missing (used by the azd hook).")
    ensure.set_defaults(handler=cmd_ensure_token)

    check = commands.add_parser(
        "check-name",
        help="Check an azd environment name as a customer name (azd preprovision hook).",
    )
    check.add_argument("name", help="the azd environment name ($AZURE_ENV_NAME)")
    check.set_defaults(handler=cmd_check_name, dry_run=False, subscription=None)

    listing = commands.add_parser(
        "list", help="List the instances in the subscription.", description=cmd_list.__doc__
    )
    listing.add_argument("--subscription", help="Azure subscription (default: az's current one)")
    listing.add_argument("--tenant-id", type=_tenant_id, help="mark instances of other tenants")
    listing.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    listing.set_defaults(handler=cmd_list)

    status = commands.add_parser(
        "status", help="Health of one instance or of all (--all).", description=cmd_status.__doc__
    )
    status.add_argument("customer", nargs="?", type=_customer, help="one customer (or --all)")
    status.add_argument("--all", action="store_true", help="every instance in the subscription")
    status.add_argument("--resource-group", help="default: rg-scim-<customer>")
    status.add_argument("--subscription", help="Azure subscription (default: az's current one)")
    status.add_argument("--tenant-id", type=_tenant_id, help="expected signed-in tenant")
    status.add_argument(
        "--max-token-age",
        type=int,
        default=fleet.MAX_TOKEN_AGE_DAYS,
        help="flag tokens not rotated for this many days (default: %(default)s)",
    )
    status.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    status.set_defaults(handler=cmd_status)
    return root


def main(argv: list[str] | None = None, az: AzureCli | None = None) -> int:
    args = parser().parse_args(argv)
    az = az or AzureCli(dry_run=args.dry_run, subscription=args.subscription)
    if args.dry_run:
        az.echo("Dry run: nothing below is executed.")
    try:
        args.handler(az, args)
    except AzError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except smoke.SmokeTestFailed as exc:
        print(
            f"error: smoke test failed: {exc}. See docs/entra-setup.md#troubleshooting.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
