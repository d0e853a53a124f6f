"""The deployed instances seen from the consultant's Azure login: the tags that mark them, the
signed-in tenant check every command makes, and ``list``.

Tags (resource group; the resources carry the first two as well, from main.bicep):

- ``scim-product=scim-func``: this product's instances, so ``list`` finds them in a
  subscription shared with other workloads;
- ``scim-customer=<customer>``;
- ``scim-tenant=<Entra tenant id>``: the tenant the instance serves. Commands that act on an
  existing instance compare it with the tenant ``az`` is signed in to: the instance's managed
  identity reads Graph only in its own tenant, and a consultant juggling several customers'
  logins should not rotate or tear down the wrong customer's instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .azcli import AzureCli

PRODUCT_TAG, PRODUCT = "scim-product", "scim-func"
CUSTOMER_TAG = "scim-customer"
TENANT_TAG = "scim-tenant"


@dataclass(frozen=True)
class ResourceGroup:
    name: str
    location: str
    tags: dict[str, str]

    @property
    def tenant(self) -> str | None:
        return self.tags.get(TENANT_TAG)


def existing_group(az: AzureCli, name: str) -> ResourceGroup | None:
    """The resource group if it exists (dry run: as if it did not)."""
    if az.run("group exists --name {rg}", rg=name, placeholder="false") != "true":
        return None
    found = az.run_json(
        "group show --name {rg} --query {query}",
        rg=name,
        query="{location: location, tags: tags}",
        placeholder={"location": "<location>", "tags": {}},
    )
    return ResourceGroup(name, found["location"], dict(found.get("tags") or {}))


def signed_in_tenant(az: AzureCli, expected: str | None) -> str:
    return az.run(
        "account show --query tenantId --output tsv", placeholder=expected or "<signed-in tenant>"
    )


def check_tenant(az: AzureCli, expected: str | None, what: str) -> None:
    """Refuse to act when ``az`` is signed in to another tenant than ``expected``."""
    signed_in = signed_in_tenant(az, expected)
    if expected is None:
        az.echo(
            f"warning: {what} records no Entra tenant (tag {TENANT_TAG}; deployed by an older "
            f"version?), so the signed-in tenant {signed_in} is not checked. Pass --tenant-id, "
            "or redeploy to record it."
        )
        return
    if signed_in.lower() != expected.lower():
        raise SystemExit(
            f"The Azure CLI is signed in to tenant {signed_in}, but {what} serves tenant "
            f"{expected}: run 'az login --tenant {expected}'."
        )


def check_instance_tenant(az: AzureCli, resource_group: str, tenant_option: str | None) -> None:
    """The check of every command on an existing instance: --tenant-id, else the group's tag."""
    expected = tenant_option
    if expected is None:
        tags = az.run_json("group show --name {rg} --query tags", rg=resource_group, placeholder={})
        expected = (tags or {}).get(TENANT_TAG)
    check_tenant(az, expected, f"resource group {resource_group}")


@dataclass(frozen=True)
class Listed:
    customer: str
    resource_group: str
    location: str
    tenant: str


def list_instances(az: AzureCli) -> list[Listed]:
    """Every instance in the subscription: resource groups tagged for this product, plus
    groups holding a function app with the product tag (instances deployed with azd, whose
    resource group the tool did not create)."""
    groups: list[dict[str, Any]] = (
        az.run_json(
            "group list --tag {tag} --query {query}",
            tag=f"{PRODUCT_TAG}={PRODUCT}",
            query="[].{name: name, location: location, tags: tags}",
            placeholder=[],
        )
        or []
    )
    apps: list[dict[str, Any]] = (
        az.run_json(
            "resource list --tag {tag} --resource-type Microsoft.Web/sites --query {query}",
            tag=f"{PRODUCT_TAG}={PRODUCT}",
            query="[].{group: resourceGroup, location: location, tags: tags}",
            placeholder=[],
        )
        or []
    )
    found: dict[str, Listed] = {}
    for group in groups:
        tags = dict(group.get("tags") or {})
        found[group["name"].lower()] = Listed(
            tags.get(CUSTOMER_TAG, "?"), group["name"], group["location"], tags.get(TENANT_TAG, "?")
        )
    for app in apps:
        tags = dict(app.get("tags") or {})
        found.setdefault(
            app["group"].lower(),
            Listed(tags.get(CUSTOMER_TAG, "?"), app["group"], app["location"], "?"),
        )
    return sorted(found.values(), key=lambda i: (i.customer, i.resource_group))


def table(rows: list[list[str]]) -> list[str]:
    """Plain columns, left-aligned, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
