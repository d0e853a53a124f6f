"""Builds the process-wide service from settings: the one place that picks a store and an
authenticator. Called once per process by ``function_app``."""

from __future__ import annotations

from scim_core.auth import Authenticator
from scim_core.router import Router
from scim_core.service import ScimService
from scim_core.settings import Settings
from scim_core.store import Store


class ConfigurationError(RuntimeError):
    """The app settings do not describe a usable deployment."""


def build_store(settings: Settings) -> Store:
    # azure.data.tables loads only when a store is built
    from scim_core.store.table import TableStore

    if settings.tables_connection_string:
        # Locally (Azurite) nothing else creates the tables (in Azure, Bicep does): the first
        # write that finds them missing creates them.
        return TableStore.from_connection_string(
            settings.tables_connection_string, tables_on_demand=True
        )
    if settings.tables_endpoint:
        return TableStore.from_managed_identity(settings.tables_endpoint, settings.azure_client_id)
    raise ConfigurationError("set TABLES_CONNECTION_STRING (local) or TABLES_ENDPOINT (Azure)")


def build_router(settings: Settings) -> Router:
    """The request handler of a process: the service over the configured store, behind the
    configured authenticator."""
    return Router(ScimService(build_store(settings)), Authenticator.from_settings(settings))
