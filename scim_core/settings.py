"""Typed app settings.

The single source of truth for every app setting the code reads. The names are the
UPPER_SNAKE app-setting names used in Azure (Bicep ``appSettings``) and locally
(``local.settings.example.json``); ``tests/test_settings_agree.py`` checks the three agree.

scim_core never reads the environment itself: ``function_app`` builds a ``Settings`` from
``os.environ`` once per process and passes it in.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

#: Entra's own provisioning-service audience ("blank Secret Token" mode). Same for every app.
ENTRA_PROVISIONING_AUDIENCE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
#: What an app setting holds when App Service could not resolve its Key Vault reference.
UNRESOLVED_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


class Settings(BaseModel):
    """App settings, by their app-setting names (aliases)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    # --- authentication -------------------------------------------------------------------
    bearer_token: str | None = Field(default=None, alias="SCIM_BEARER_TOKEN")
    """The secret bearer token Entra sends (Key Vault reference in Azure)."""
    bearer_token_secondary: str | None = Field(default=None, alias="SCIM_BEARER_TOKEN_SECONDARY")
    """A second accepted token, so a token can be rotated without downtime."""
    jwt_issuer: str | None = Field(default=None, alias="SCIM_JWT_ISSUER")
    """OAuth client-credentials mode: the issuer a bearer JWT must carry."""
    jwt_audience: str | None = Field(default=None, alias="SCIM_JWT_AUDIENCE")
    """OAuth client-credentials mode: the audience a bearer JWT must carry."""
    jwks_url: str | None = Field(default=None, alias="SCIM_JWKS_URL")
    """Where the signing keys of accepted JWTs are published (JWKS)."""
    entra_tenant_id: str | None = Field(default=None, alias="SCIM_ENTRA_TENANT_ID")
    """Accept Entra's own provisioning JWT ("blank Secret Token") from this tenant only."""

    # --- storage ---------------------------------------------------------------------------
    tables_connection_string: str | None = Field(default=None, alias="TABLES_CONNECTION_STRING")
    """Connection string (Azurite locally). Takes precedence over the endpoint."""
    tables_endpoint: str | None = Field(default=None, alias="TABLES_ENDPOINT")
    """``https://<account>.table.core.windows.net`` used with managed identity in Azure."""
    azure_client_id: str | None = Field(default=None, alias="AZURE_CLIENT_ID")
    """Client id of the user-assigned managed identity (tables, Key Vault, Graph)."""

    # --- Graph enrichment ------------------------------------------------------------------
    sync_schedule: str = Field(default="0 */15 * * * *", alias="SYNC_SCHEDULE")
    """NCRONTAB schedule (UTC) of the Graph delta sync timer."""
    graph_base_url: str = Field(default="https://graph.microsoft.com/v1.0", alias="GRAPH_BASE_URL")
    graph_tenant_id: str | None = Field(default=None, alias="GRAPH_TENANT_ID")
    graph_client_id: str | None = Field(default=None, alias="GRAPH_CLIENT_ID")
    graph_client_secret: str | None = Field(default=None, alias="GRAPH_CLIENT_SECRET")
    graph_select: str | None = Field(default=None, alias="GRAPH_SELECT")
    graph_join: str = Field(default="externalId", alias="GRAPH_JOIN")
    graph_deprovision: str = Field(default="flag", alias="GRAPH_DEPROVISION")
    graph_notification_url: str | None = Field(default=None, alias="GRAPH_NOTIFICATION_URL")
    graph_client_state: str | None = Field(default=None, alias="GRAPH_CLIENT_STATE")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from an environment mapping; empty strings count as unset."""
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        return cls.model_validate({k: v for k, v in environ.items() if k in names and v != ""})

    @classmethod
    def setting_names(cls) -> list[str]:
        """Every app-setting name the code reads, sorted."""
        return sorted(f.alias for f in cls.model_fields.values() if f.alias)

    def bearer_tokens(self) -> list[str]:
        """The accepted static tokens (primary first).

        A value still reading ``@Microsoft.KeyVault(...)`` is a Key Vault reference the platform
        failed to resolve: its text is guessable, so it is never a token (fail closed)."""
        return [
            t
            for t in (self.bearer_token, self.bearer_token_secondary)
            if t and not t.startswith(UNRESOLVED_KEY_VAULT_REFERENCE)
        ]
