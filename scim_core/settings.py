"""Typed app settings.

The single source of truth for every app setting the code reads. The names are the
UPPER_SNAKE app-setting names used in Azure (Bicep ``appSettings``) and locally
(``local.settings.example.json``); ``tests/test_settings_agree.py`` checks the three agree.

scim_core never reads the environment itself: ``function_app`` builds a ``Settings`` from
``os.environ`` once per process and passes it in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Entra's own provisioning-service audience ("blank Secret Token" mode). Same for every app.
ENTRA_PROVISIONING_AUDIENCE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
#: What an app setting holds when App Service could not resolve its Key Vault reference.
UNRESOLVED_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("


def _setting(name: str, default: str | None = None, *, secret: bool = False) -> Any:
    """A field read from the app setting ``name``; a secret one is left out of ``repr``."""
    return field(default=default, repr=not secret, metadata={"alias": name})


@dataclass(frozen=True)
class Settings:
    """App settings; each field's app-setting name is its ``alias``. Build with
    :meth:`from_env` (app-setting names); ``Settings()`` is every default.

    A plain dataclass: every value is a string from the environment, and it is built on the
    first request, where pydantic would add ~75 ms to a cold start (bench/README.md)."""

    # --- authentication -------------------------------------------------------------------
    bearer_token: str | None = _setting("SCIM_BEARER_TOKEN", secret=True)
    """The secret bearer token Entra sends (Key Vault reference in Azure)."""
    bearer_token_secondary: str | None = _setting("SCIM_BEARER_TOKEN_SECONDARY", secret=True)
    """A second accepted token, so a token can be rotated without downtime."""
    jwt_issuer: str | None = _setting("SCIM_JWT_ISSUER")
    """OAuth client-credentials mode: the issuer a bearer JWT must carry."""
    jwt_audience: str | None = _setting("SCIM_JWT_AUDIENCE")
    """OAuth client-credentials mode: the audience a bearer JWT must carry."""
    jwks_url: str | None = _setting("SCIM_JWKS_URL")
    """Where the signing keys of accepted JWTs are published (JWKS)."""
    test_only_entra_tenant_id: str | None = _setting("SCIM_TEST_ONLY_ENTRA_TENANT_ID")
    """TEST ONLY: accept Entra's own provisioning JWT ("blank Secret Token") from this tenant.

    Off unless set. Its audience is the same for every custom app in the tenant, so any
    enterprise app there could authenticate; Microsoft says the token is for testing only
    (Learn, "Tutorial: Develop a sample SCIM endpoint in Microsoft Entra ID")."""

    # --- the line-of-business app's own credentials (docs/app-guide.md) -----------------------
    app_token: str | None = _setting("SCIM_APP_TOKEN", secret=True)
    """The app's static bearer token (Key Vault reference in Azure); never Entra's token."""
    app_token_secondary: str | None = _setting("SCIM_APP_TOKEN_SECONDARY", secret=True)
    """A second accepted app token, so the app's token can be rotated without downtime."""
    app_scopes: str = _setting("SCIM_APP_SCOPES", "read")
    """Scopes of the app's static token, comma- or space-separated: ``read``, ``events``,
    ``app:write`` (scim_core/principal.py)."""
    app_jwt_issuer: str | None = _setting("SCIM_APP_JWT_ISSUER")
    """App-role mode: the issuer of the app's Entra-issued JWTs
    (``https://sts.windows.net/<tenant-id>/`` for v1 tokens)."""
    app_jwt_audience: str | None = _setting("SCIM_APP_JWT_AUDIENCE")
    """App-role mode: the audience (this endpoint's app registration) of the app's JWTs."""
    app_jwks_url: str | None = _setting("SCIM_APP_JWKS_URL")
    """App-role mode: the tenant's signing keys
    (``https://login.microsoftonline.com/<tenant-id>/discovery/v2.0/keys``)."""
    app_extension_attributes: str | None = _setting("SCIM_APP_EXTENSION_ATTRIBUTES")
    """Attributes of the app-owned extension ``urn:scimfunc:schemas:extension:app:1.0:User``,
    a JSON list of RFC 7643 §7 attribute definitions; unset: the extension has none."""

    # --- storage ---------------------------------------------------------------------------
    tables_connection_string: str | None = _setting("TABLES_CONNECTION_STRING", secret=True)
    """Connection string (Azurite locally). Takes precedence over the endpoint."""
    tables_endpoint: str | None = _setting("TABLES_ENDPOINT")
    """``https://<account>.table.core.windows.net`` used with managed identity in Azure."""
    azure_client_id: str | None = _setting("AZURE_CLIENT_ID")
    storage_timeout: str = _setting("STORAGE_TIMEOUT_SECONDS", "5")
    """Bound on one storage call, retries included; past it a request answers 503."""
    """Client id of the user-assigned managed identity (tables, Key Vault, Graph)."""
    indexed_attributes: str = _setting(
        "SCIM_INDEXED_ATTRIBUTES",
        "emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    )
    """User attributes indexed for ``eq`` lookups, comma-separated (scim_core.indexes). After
    changing it on an instance with users, run ``python -m scim_core.reindex`` once."""

    # --- token age (scim_core/token_age.py) ------------------------------------------------
    token_age_schedule: str = _setting("TOKEN_AGE_SCHEDULE", "0 30 5 * * *")
    """NCRONTAB schedule (UTC) of the timer that logs each static token's age. Daily: the
    "token not rotated" alert reads the latest line of the last two days."""

    # --- provisioning events (docs/events.md) ------------------------------------------------
    events: str = _setting("SCIM_EVENTS", "off")
    """``off``, ``notice`` (RFC 9967 notice events: what changed, not the values) or ``full``
    (the resource's data in each event). Each committed change writes its event in its own
    storage transaction (scim_core/events)."""
    events_signing_key: str | None = _setting("SCIM_EVENTS_SIGNING_KEY", secret=True)
    """PEM private key (RSA: RS256, EC P-256: ES256) that signs the SETs (Key Vault reference
    in Azure)."""
    events_signing_kid: str | None = _setting("SCIM_EVENTS_SIGNING_KID")
    """``kid`` of the signing key; default its RFC 7638 thumbprint."""
    events_unsigned: str = _setting("SCIM_EVENTS_UNSIGNED", "false")
    """``true``: SETs are unsecured JWTs (``alg: none``), for a receiver that reaches /Events
    over TLS with its own credential anyway (docs/events.md, "Signed or not")."""
    events_issuer: str = _setting("SCIM_EVENTS_ISSUER", "urn:scimfunc:events")
    """The SETs' ``iss``: set it to the tenant URL."""
    events_audience: str | None = _setting("SCIM_EVENTS_AUDIENCE")
    """The SETs' ``aud`` (the receiver), if set."""
    events_retention_days: str = _setting("SCIM_EVENTS_RETENTION_DAYS", "7")
    """Days an event nobody acknowledged is kept; then the retention timer removes it."""
    events_retention_schedule: str = _setting("SCIM_EVENTS_RETENTION_SCHEDULE", "0 45 4 * * *")
    """NCRONTAB schedule (UTC) of the event retention timer (daily)."""
    events_poll_wait: str = _setting("SCIM_EVENTS_POLL_WAIT_SECONDS", "20")
    """Longest a poll with ``returnImmediately: false`` waits for an event (RFC 8936 §2.4)."""
    events_push_url: str | None = _setting("SCIM_EVENTS_PUSH_URL")
    """RFC 8935 push: the receiver's HTTPS endpoint; unset, events are poll-only."""
    events_push_token: str | None = _setting("SCIM_EVENTS_PUSH_TOKEN", secret=True)
    """Bearer token the push sends to the receiver (Key Vault reference in Azure)."""
    events_push_schedule: str = _setting("SCIM_EVENTS_PUSH_SCHEDULE", "0 */1 * * * *")
    """NCRONTAB schedule (UTC) of the push timer."""
    events_push_give_up_hours: str = _setting("SCIM_EVENTS_PUSH_GIVE_UP_HOURS", "24")
    """A SET the receiver keeps refusing is no longer pushed after this long (it stays
    pollable until the retention removes it)."""

    # --- Graph enrichment ------------------------------------------------------------------
    sync_schedule: str = _setting("SYNC_SCHEDULE", "0 */15 * * * *")
    """NCRONTAB schedule (UTC) of the Graph delta sync timer."""
    graph_base_url: str = _setting("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0")
    graph_tenant_id: str | None = _setting("GRAPH_TENANT_ID")
    graph_client_id: str | None = _setting("GRAPH_CLIENT_ID")
    graph_client_secret: str | None = _setting("GRAPH_CLIENT_SECRET", secret=True)
    graph_select: str | None = _setting("GRAPH_SELECT")
    graph_join: str = _setting("GRAPH_JOIN", "externalId")
    graph_deprovision: str = _setting("GRAPH_DEPROVISION", "flag")
    graph_notification_url: str | None = _setting("GRAPH_NOTIFICATION_URL")
    graph_client_state: str | None = _setting("GRAPH_CLIENT_STATE", secret=True)
    graph_writeback: str | None = _setting("GRAPH_WRITEBACK")
    """App-extension attributes written back to Entra through Graph, comma-separated
    ``appAttribute=graphProperty`` pairs (docs/graph-writeback.md); unset: no write-back."""

    @classmethod
    def from_env(cls, environ: Mapping[str, Any]) -> Settings:
        """Build from an environment mapping (app-setting names); other names are ignored and
        empty strings count as unset. A value that is not a string is a TypeError."""
        values: dict[str, str] = {}
        for f in fields(cls):
            value = environ.get(f.metadata["alias"])
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise TypeError(f"app setting {f.metadata['alias']} must be a string")
            values[f.name] = value
        return cls(**values)

    @classmethod
    def setting_names(cls) -> list[str]:
        """Every app-setting name the code reads, sorted."""
        return sorted(f.metadata["alias"] for f in fields(cls))

    def as_env(self) -> dict[str, str]:
        """The settings that are set, by app-setting name (``from_env`` of it is equal)."""
        names = {f.name: f.metadata["alias"] for f in fields(self)}
        return {names[k]: v for k, v in asdict(self).items() if v is not None}

    def bearer_tokens(self) -> list[str]:
        """Entra's accepted static tokens (primary first).

        A value still reading ``@Microsoft.KeyVault(...)`` is a Key Vault reference the platform
        failed to resolve: its text is guessable, so it is never a token (fail closed)."""
        return _resolved(self.bearer_token, self.bearer_token_secondary)

    def app_tokens(self) -> list[str]:
        """The app's accepted static tokens (primary first), as :meth:`bearer_tokens`."""
        return _resolved(self.app_token, self.app_token_secondary)


def _resolved(*tokens: str | None) -> list[str]:
    return [t for t in tokens if t and not t.startswith(UNRESOLVED_KEY_VAULT_REFERENCE)]
