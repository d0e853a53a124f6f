"""App credentials and the app-owned extension's settings, without a host: start-up errors
and the trust-domain rules of scim_core/auth.py (the HTTP behaviour is in
tests/e2e/test_app_access.py)."""

from __future__ import annotations

import json
import logging

import pytest

from scim_core.app_extension import app_user_schema
from scim_core.auth import Authenticator
from scim_core.errors import Unauthorized
from scim_core.principal import parse_scopes, scopes_of_roles
from scim_core.settings import Settings
from tests.unit import test_auth
from tests.unit.test_auth import JwksServer, Keys, authenticator, make_jwt

# The loopback JWKS server and the generated keys of the authentication tests.
keys = test_auth.keys
jwks_server = test_auth.jwks_server

ENTRA_TOKEN = "entra-secret-token-0123456789abcdef"
APP_TOKEN = "app-secret-token-0123456789abcdef"
ISSUER = "https://sts.windows.net/11111111-2222-3333-4444-555555555555/"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("read", {"read"}),
        ("read,events", {"read", "events"}),
        ("read events app:write", {"read", "events", "app:write"}),
        (" read ,\tapp:write,, ", {"read", "app:write"}),
        ("", set()),
    ],
    ids=["one", "comma", "space", "mixed-separators", "empty"],
)
def test_scopes_parse(text: str, expected: set[str]) -> None:
    assert parse_scopes(text) == expected


@pytest.mark.parametrize("text", ["write", "read,admin", "READ"], ids=["write", "admin", "case"])
def test_unknown_scope_is_a_startup_error(text: str) -> None:
    """A typo must neither grant less silently nor be read as something else."""
    with pytest.raises(ValueError, match="unknown scope"):
        Authenticator.from_settings(Settings.from_env({"SCIM_APP_SCOPES": text}))


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["read", "Other.Role"], {"read"}),
        ("events", {"events"}),
        (None, set()),
        ([1, {"x": 1}, "app:write"], {"app:write"}),
    ],
    ids=["unknown-ignored", "single-string", "absent", "junk-ignored"],
)
def test_roles_claim_to_scopes(roles: object, expected: set[str]) -> None:
    assert scopes_of_roles(roles) == expected


def test_app_token_equal_to_entra_token_is_a_startup_error() -> None:
    with pytest.raises(ValueError, match="must differ"):
        authenticator(SCIM_BEARER_TOKEN=ENTRA_TOKEN, SCIM_APP_TOKEN=ENTRA_TOKEN)


def test_static_tokens_map_to_their_principal() -> None:
    auth = authenticator(
        SCIM_BEARER_TOKEN=ENTRA_TOKEN, SCIM_APP_TOKEN=APP_TOKEN, SCIM_APP_SCOPES="read events"
    )
    entra = auth.authenticate(f"Bearer {ENTRA_TOKEN}")
    app = auth.authenticate(f"Bearer {APP_TOKEN}")
    assert (entra.role, entra.scopes) == ("provisioning", frozenset())
    assert (app.role, app.subject, app.scopes) == ("app", "app-token-1", {"read", "events"})


def test_unresolved_key_vault_reference_is_no_app_token() -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/scim-app-token)"
    auth = authenticator(SCIM_BEARER_TOKEN=ENTRA_TOKEN, SCIM_APP_TOKEN=reference)
    with pytest.raises(Unauthorized):
        auth.authenticate(f"Bearer {reference}")


def test_app_mode_half_configured_is_a_startup_error() -> None:
    with pytest.raises(ValueError, match="SCIM_APP_JWKS_URL"):
        authenticator(SCIM_APP_JWT_ISSUER=ISSUER, SCIM_APP_JWT_AUDIENCE="api://scim")


def test_app_mode_with_entras_issuer_and_audience_is_a_startup_error(
    jwks_server: JwksServer,
) -> None:
    """Same issuer and audience as Entra's OAuth mode: an app token would pass for Entra's."""
    common = {"SCIM_JWT_ISSUER": ISSUER, "SCIM_JWT_AUDIENCE": "api://scim"}
    with pytest.raises(ValueError, match="must not accept the same"):
        authenticator(
            **common,
            SCIM_JWKS_URL=jwks_server.url,
            SCIM_APP_JWT_ISSUER=ISSUER,
            SCIM_APP_JWT_AUDIENCE="api://scim",
            SCIM_APP_JWKS_URL=jwks_server.url,
        )


def test_a_token_for_both_audiences_of_one_issuer_is_refused(
    keys: Keys, jwks_server: JwksServer
) -> None:
    """Entra's OAuth mode and the app-role mode share the tenant's issuer (both Entra-issued);
    a token naming both audiences would fit either, so it is refused rather than guessed."""
    auth = authenticator(
        SCIM_JWT_ISSUER=ISSUER,
        SCIM_JWT_AUDIENCE="api://scim-provisioning",
        SCIM_JWKS_URL=jwks_server.url,
        SCIM_APP_JWT_ISSUER=ISSUER,
        SCIM_APP_JWT_AUDIENCE="api://scim-app",
        SCIM_APP_JWKS_URL=jwks_server.url,
    )
    token = make_jwt(keys.signing, iss=ISSUER, aud=["api://scim-app", "api://scim-provisioning"])
    with pytest.raises(Unauthorized, match="more than one"):
        auth.authenticate(f"Bearer {token}")
    for_app = make_jwt(keys.signing, iss=ISSUER, aud="api://scim-app", roles=["read"])
    for_entra = make_jwt(keys.signing, iss=ISSUER, aud="api://scim-provisioning", roles=["read"])
    app = auth.authenticate(f"Bearer {for_app}")
    entra = auth.authenticate(f"Bearer {for_entra}")
    assert (app.role, app.scopes) == ("app", {"read"})
    assert (entra.role, entra.scopes) == ("provisioning", frozenset())


def test_app_mode_keys_are_its_own(keys: Keys, jwks_server: JwksServer) -> None:
    """The app-role profile fetches its own key set even from the same URL: per trust domain."""
    auth = authenticator(
        SCIM_JWT_ISSUER="https://issuer.example/",
        SCIM_JWT_AUDIENCE="api://scim",
        SCIM_JWKS_URL=jwks_server.url,
        SCIM_APP_JWT_ISSUER=ISSUER,
        SCIM_APP_JWT_AUDIENCE="api://scim-app",
        SCIM_APP_JWKS_URL=jwks_server.url,
    )
    caches = {id(p.jwks) for p in auth._profiles}
    assert len(caches) == 2


# --- SCIM_APP_EXTENSION_ATTRIBUTES -------------------------------------------------------------


def test_no_declared_attributes_means_an_empty_extension() -> None:
    schema = app_user_schema(None)
    assert schema.id == "urn:scimfunc:schemas:extension:app:1.0:User"
    assert schema.attributes == ()


@pytest.mark.parametrize(
    ("declared", "published"),
    [(None, False), ("[]", False), ('[{"name": "tier"}]', True)],
    ids=["unset", "empty-list", "one-attribute"],
)
def test_the_extension_is_published_only_with_attributes(
    declared: str | None, published: bool
) -> None:
    """An extension without attributes is left out of User (and so of /Schemas)."""
    from scim_core.schema import APP_USER_SCHEMA, default_resource_types

    user = default_resource_types(app_extension=app_user_schema(declared))["User"]
    assert (user.extension(APP_USER_SCHEMA) is not None) is published


def test_declared_attributes_are_the_schema() -> None:
    declared = [
        {"name": "tier", "type": "string", "canonicalValues": ["gold", "silver"]},
        {"name": "licence", "type": "complex", "subAttributes": [{"name": "sku"}]},
    ]
    schema = app_user_schema(json.dumps(declared))
    assert [a.name for a in schema.attributes] == ["tier", "licence"]
    assert schema.attribute("TIER") is not None
    assert schema.attributes[1].sub("sku") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"name": "x"}', "JSON list"),
        ('[{"type": "string"}]', "'name'"),
        ('[{"name": "a.b"}]', "not an attribute name"),
        ('[{"name": "x", "type": "money"}]', "not a SCIM type"),
        ('[{"name": "x", "mutability": "readOnly"}]', "readWrite or immutable"),
        ('[{"name": "x"}, {"name": "X"}]', "twice"),
        ('[{"name": "x", "type": "complex", "subAttributes": [{"type": "string"}]}]', "attribute"),
    ],
    ids=["bad-json", "not-a-list", "no-name", "dotted-name", "bad-type", "read-only", "dup", "sub"],
)
def test_bad_declarations_are_startup_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        app_user_schema(text)


def test_secrets_are_not_in_the_settings_repr(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"SCIM_APP_TOKEN": APP_TOKEN, "SCIM_APP_TOKEN_SECONDARY": "s2"})
    with caplog.at_level(logging.DEBUG):
        Authenticator.from_settings(settings)
    assert APP_TOKEN not in repr(settings) and APP_TOKEN not in caplog.text
