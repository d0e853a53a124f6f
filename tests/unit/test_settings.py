"""Typed settings from app settings (scim_core/settings.py)."""

from __future__ import annotations

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
