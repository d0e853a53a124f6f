"""What the sync does, from the app settings (``scim_core.settings.Settings``, GRAPH_*).

The Graph properties the sync can store are exactly the attributes of the published extension
schema (``scim_core/schemas/graph_user.json``), so GRAPH_SELECT can only name properties a SCIM
client will see. ``manager`` is a relationship, tracked by selecting it: Microsoft Learn, "Use
delta query to track changes in Microsoft Graph data": for users "``$expand`` is not
supported" and "``$select`` also supports **manager** ... Selecting those properties allows
tracking of changes to user's manager"; the answer carries it as ``manager@delta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from graph_enrich.errors import ConfigurationError
from scim_core.graph_schema import (
    DEFAULT_SELECT,
    REQUIRED,
    SERVICE_ATTRIBUTES,
    USER_NAME_JOIN_REQUIRED,
    requested_properties,
)
from scim_core.schema import GRAPH_USER_SCHEMA, Schema
from scim_core.settings import UNRESOLVED_KEY_VAULT_REFERENCE, Settings

__all__ = ["DEFAULT_SELECT", "REQUIRED", "USER_NAME_JOIN_REQUIRED", "SyncConfig"]

JOINS = ("externalId", "userName")
DEPROVISION_MODES = ("off", "flag", "disable")


def graph_properties() -> dict[str, str]:
    """The Graph user properties the extension schema can hold, by lower-case name."""
    schema = Schema.load("graph_user.json")
    assert schema.id == GRAPH_USER_SCHEMA
    return {a.name.lower(): a.name for a in schema.attributes if a.name not in SERVICE_ATTRIBUTES}


@dataclass(frozen=True)
class SyncConfig:
    base_url: str
    """Graph root including the version, without a trailing slash."""
    properties: tuple[str, ...]
    """Selected Graph properties stored in the extension (not ``id``, not ``manager``)."""
    tracks_manager: bool
    join: str
    deprovision: str
    notification_url: str | None
    client_state: str | None
    warnings: tuple[str, ...] = ()

    @property
    def select(self) -> list[str]:
        """The ``$select`` of the initial delta request (Graph encodes it into the tokens)."""
        return ["id", *self.properties, *(["manager"] if self.tracks_manager else [])]

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncConfig:
        base_url = settings.graph_base_url.rstrip("/")
        parts = urlsplit(base_url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ConfigurationError(
                f"GRAPH_BASE_URL must be an https URL (http only on loopback), got {base_url!r}"
            )
        join = _choice("GRAPH_JOIN", settings.graph_join, JOINS)
        deprovision = _choice("GRAPH_DEPROVISION", settings.graph_deprovision, DEPROVISION_MODES)
        known = graph_properties()
        properties: dict[str, None] = {}
        warnings: list[str] = []
        tracks_manager = False
        for name in requested_properties(settings.graph_select, join):
            low = name.lower()
            if low == "id":
                continue
            if low == "manager":
                tracks_manager = True
            elif low in known:
                properties[known[low]] = None
            else:
                # A typo must not stop the sync of everything else, but must not pass silently.
                warnings.append(
                    f"GRAPH_SELECT names {name!r}, which the extension schema does "
                    "not hold; it is not synced"
                )
        client_state = settings.graph_client_state
        if client_state and client_state.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            raise ConfigurationError(
                "GRAPH_CLIENT_STATE is a Key Vault reference the platform could not resolve"
            )
        return cls(
            base_url,
            tuple(properties),
            tracks_manager,
            join,
            deprovision,
            settings.graph_notification_url,
            client_state,
            tuple(warnings),
        )


def _choice(setting: str, value: str, allowed: tuple[str, ...]) -> str:
    for option in allowed:
        if value.strip().lower() == option.lower():
            return option
    raise ConfigurationError(f"{setting} must be one of {', '.join(allowed)}; got {value!r}")
