"""Which azure-identity credential reads Graph, from the app settings.

- GRAPH_TENANT_ID + GRAPH_CLIENT_ID + GRAPH_CLIENT_SECRET: an app registration's client secret,
  for admins who prefer one (and for running the sync outside Azure without a developer login).
- AZURE_CLIENT_ID: the Function App's user-assigned managed identity (how Bicep deploys it;
  ``infra/graph-permissions.bicep`` grants it User.Read.All).
- neither: ``DefaultAzureCredential`` (environment variables, workload identity, Azure CLI,
  azd, Azure PowerShell ...) for a developer's machine.

azure.identity is imported here, inside the functions, so that only the timer path pays for it
(tests/unit/test_import_rules.py). Credentials are built once per process and reused: each
keeps its token cache, so a run every 15 minutes does not fetch a new token every time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from graph_enrich.errors import ConfigurationError
from scim_core.settings import UNRESOLVED_KEY_VAULT_REFERENCE, Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

#: Entra sign-in authority per Graph national cloud (Microsoft Learn, "National cloud
#: deployments"): a client secret must be redeemed in the cloud of its Graph endpoint.
_AUTHORITIES = {
    "graph.microsoft.com": "login.microsoftonline.com",
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}

_lock = threading.Lock()
_cache: dict[tuple[str | None, ...], TokenCredential] = {}


def build_credential(settings: Settings) -> TokenCredential:
    """The process-wide credential for these settings (``ConfigurationError`` if half-set)."""
    secret = settings.graph_client_secret
    names = ("GRAPH_TENANT_ID", "GRAPH_CLIENT_ID", "GRAPH_CLIENT_SECRET")
    values = (settings.graph_tenant_id, settings.graph_client_id, secret)
    if secret or settings.graph_client_id:
        missing = [n for n, v in zip(names, values, strict=True) if not v]
        if missing:
            raise ConfigurationError(
                f"client-secret Graph auth needs {', '.join(names)}; {', '.join(missing)} not set"
            )
        if secret and secret.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            raise ConfigurationError(
                "GRAPH_CLIENT_SECRET is a Key Vault reference the platform could not resolve"
            )
    key = (*values, settings.azure_client_id, settings.graph_base_url)
    with _lock:
        if key not in _cache:
            _cache[key] = _new_credential(settings)
        return _cache[key]


def _new_credential(settings: Settings) -> TokenCredential:
    if settings.graph_client_secret:
        from azure.identity import ClientSecretCredential

        host = urlsplit(settings.graph_base_url).hostname or ""
        assert settings.graph_tenant_id and settings.graph_client_id
        return ClientSecretCredential(
            settings.graph_tenant_id,
            settings.graph_client_id,
            settings.graph_client_secret,
            authority=_AUTHORITIES.get(host, _AUTHORITIES["graph.microsoft.com"]),
        )
    if settings.azure_client_id:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=settings.azure_client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
