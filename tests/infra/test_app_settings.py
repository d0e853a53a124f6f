"""One list of app settings: settings.py <-> Bicep appSettings <-> local.settings.example.json.

``Settings.setting_names()`` is the source of truth. The Function App in Azure sets exactly those
names plus the Functions platform's own, except the settings below that only make sense outside
Azure; local.settings.example.json lists every name so `func start` users see them all.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from scim_core.settings import Settings

from .templates import FUNCTION_APP, ROOT, app_settings

#: Settings the code reads that Azure deliberately does not set (each named, with its reason, in
#: the comment above the site resource in infra/modules/functionapp.bicep).
NOT_SET_IN_AZURE = {
    "TABLES_CONNECTION_STRING": "Azurite/local only; Azure uses TABLES_ENDPOINT + managed identity",
    "GRAPH_CLIENT_ID": "client-credentials Graph auth outside Azure; Azure uses AZURE_CLIENT_ID",
    "GRAPH_CLIENT_SECRET": "same: no client secret in Azure, the managed identity reads Graph",
}

#: Functions platform settings the Bicep sets besides the app's own (identity-based host storage
#: by service URI, and Entra-authenticated Application Insights).
HOST_STORAGE_URIS = {
    "AzureWebJobsStorage__blobServiceUri": "blob",
    "AzureWebJobsStorage__queueServiceUri": "queue",
    "AzureWebJobsStorage__tableServiceUri": "table",
}
PLATFORM_SETTINGS = {
    *HOST_STORAGE_URIS,
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

#: Settings Flex Consumption rejects or that would bring back key-based storage access.
FORBIDDEN_IN_AZURE = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "AzureWebJobsStorage",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
    # Works only in global Azure (Learn, "Azure Functions developer guide", Connecting to host
    # storage with an identity): the service URIs above replace it.
    "AzureWebJobsStorage__accountName",
}

#: Keys local.settings.example.json may hold besides the app's settings: the local host's own.
LOCAL_PLATFORM_PREFIXES = ("AzureWebJobs", "FUNCTIONS_", "APPLICATIONINSIGHTS_", "PYTHON_")

LOCAL_EXAMPLE = ROOT / "local.settings.example.json"


def _bicep_names() -> list[str]:
    return [setting["name"] for setting in app_settings()]


def test_exceptions_are_real_settings() -> None:
    """A stale exception (a setting since removed from settings.py) is an error, not a no-op."""
    assert set(NOT_SET_IN_AZURE) <= set(Settings.setting_names())


def test_bicep_sets_exactly_the_settings_the_code_reads() -> None:
    expected = (set(Settings.setting_names()) - set(NOT_SET_IN_AZURE)) | PLATFORM_SETTINGS
    assert set(_bicep_names()) == expected


def test_bicep_app_settings_are_unique() -> None:
    duplicates = [name for name, count in Counter(_bicep_names()).items() if count > 1]
    assert duplicates == []


def test_bicep_sets_no_forbidden_settings() -> None:
    assert set(_bicep_names()) & FORBIDDEN_IN_AZURE == set()


@pytest.mark.parametrize("name", sorted(NOT_SET_IN_AZURE))
def test_each_exception_is_explained_in_the_template(name: str) -> None:
    comment = FUNCTION_APP.read_text().split("resource site ", 1)[0]
    assert f"//   {name}" in comment


@pytest.mark.parametrize(
    "name",
    [
        "SCIM_BEARER_TOKEN",
        "SCIM_BEARER_TOKEN_SECONDARY",
        "SCIM_APP_TOKEN",
        "SCIM_APP_TOKEN_SECONDARY",
        "GRAPH_CLIENT_STATE",
    ],
)
def test_secrets_are_key_vault_references(name: str) -> None:
    """The tokens and the Graph clientState live in Key Vault; the app settings only point at
    them (versionless URI), so listing the app's settings reveals no secret."""
    value = {s["name"]: s["value"] for s in app_settings()}[name]
    assert value.startswith("@Microsoft.KeyVault(SecretUri=${") and value.endswith("})")


@pytest.mark.parametrize(("name", "service"), sorted(HOST_STORAGE_URIS.items()))
def test_host_storage_uris_follow_the_cloud(name: str, service: str) -> None:
    """Service URIs built from environment().suffixes.storage work in every Azure cloud, as in
    the official Flex sample; AzureWebJobsStorage__accountName works in global Azure only."""
    value = {s["name"]: s["value"] for s in app_settings()}[name]
    assert value == f"https://${{storageAccountName}}.{service}.${{environment().suffixes.storage}}"


def test_host_storage_uses_the_managed_identity() -> None:
    values = {s["name"]: s["value"] for s in app_settings()}
    assert values["AzureWebJobsStorage__credential"] == "managedidentity"
    assert (
        values["AzureWebJobsStorage__clientId"] == values["AZURE_CLIENT_ID"] == "identityClientId"
    )


def _local_values() -> dict[str, str]:
    return json.loads(LOCAL_EXAMPLE.read_text())["Values"]


def test_local_example_lists_every_setting() -> None:
    """local.settings.example.json holds every Settings.setting_names() entry."""
    assert set(Settings.setting_names()) - set(_local_values()) == set()


def test_local_example_holds_no_unknown_settings() -> None:
    """Beyond the app's settings, only the local Functions host's own keys."""
    extra = set(_local_values()) - set(Settings.setting_names())
    assert {k for k in extra if not k.startswith(LOCAL_PLATFORM_PREFIXES)} == set()
