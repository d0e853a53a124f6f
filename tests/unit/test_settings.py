"""Typed settings from app settings (scim_core/settings.py)."""

from __future__ import annotations

import pytest

from scim_core.settings import Settings


def test_from_env_reads_aliases_and_ignores_empty() -> None:
    s = Settings.from_env(
        {
            "SCIM_BEARER_TOKEN": "a",
            "SCIM_BEARER_TOKEN_SECONDARY": "",
            "SYNC_SCHEDULE": "0 0 * * * *",
            "UNRELATED": "x",
        }
    )
    assert s.bearer_tokens() == ["a"] and s.sync_schedule == "0 0 * * * *"


def test_unresolved_key_vault_reference_is_never_a_token() -> None:
    """If App Service cannot resolve a Key Vault reference, the setting keeps the reference's
    text, which is guessable: it must not become an accepted token."""
    ref = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/scim-token/)"
    s = Settings.from_env({"SCIM_BEARER_TOKEN": ref, "SCIM_BEARER_TOKEN_SECONDARY": "b"})
    assert s.bearer_tokens() == ["b"]


def test_secrets_stay_out_of_repr() -> None:
    """A Settings object that ends up in a log line or a traceback must not carry secrets."""
    s = Settings.from_env(
        {
            "SCIM_BEARER_TOKEN": "tok-primary-123",
            "SCIM_BEARER_TOKEN_SECONDARY": "tok-secondary-456",
            "TABLES_CONNECTION_STRING": "AccountKey=key-789",
            "GRAPH_CLIENT_SECRET": "graph-secret-000",
            "GRAPH_CLIENT_STATE": "state-111",
            "GRAPH_TENANT_ID": "tenant-visible",
        }
    )
    text = repr(s)
    assert "tenant-visible" in text
    for secret in ("tok-primary", "tok-secondary", "key-789", "graph-secret", "state-111"):
        assert secret not in text


def test_as_env_round_trips_and_names_every_setting() -> None:
    s = Settings.from_env({"SCIM_BEARER_TOKEN": "a", "GRAPH_JOIN": "userPrincipalName"})
    assert Settings.from_env(s.as_env()) == s
    assert set(s.as_env()) <= set(Settings.setting_names())
    assert s.as_env()["SYNC_SCHEDULE"] == "0 */15 * * * *"  # defaults are settings too


def test_non_string_value_is_refused() -> None:
    with pytest.raises(TypeError, match="SCIM_BEARER_TOKEN"):
        Settings.from_env({"SCIM_BEARER_TOKEN": 42})


def test_blank_secret_token_mode_is_test_only_and_off_by_default() -> None:
    """Entra's own provisioning token is for testing only (Learn, "Tutorial: Develop a sample
    SCIM endpoint in Microsoft Entra ID"): the setting that turns it on says so in its name,
    the name used before the rename is not read any more, and the default is off."""
    names = Settings.setting_names()
    assert "SCIM_TEST_ONLY_ENTRA_TENANT_ID" in names
    assert "SCIM_ENTRA_TENANT_ID" not in names
    assert Settings().test_only_entra_tenant_id is None
    assert Settings.from_env({"SCIM_ENTRA_TENANT_ID": "t"}).test_only_entra_tenant_id is None
