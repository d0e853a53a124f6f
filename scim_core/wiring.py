"""Builds the process-wide service from settings: the one place that picks a store and an
authenticator. Called once per process by ``function_app``."""

from __future__ import annotations

from collections.abc import Sequence

from scim_core.app_extension import app_user_schema
from scim_core.auth import Authenticator
from scim_core.events.record import EventProducer
from scim_core.events.tokens import SetEncoder
from scim_core.graph_schema import graph_user_schema
from scim_core.indexes import IndexSettingError
from scim_core.outbox import Producer
from scim_core.producers import event_producer, producers
from scim_core.router import Router
from scim_core.schema import default_resource_types
from scim_core.service import ScimService
from scim_core.settings import UNRESOLVED_KEY_VAULT_REFERENCE, Settings
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
            settings.tables_connection_string,
            tables_on_demand=True,
            storage_timeout=_seconds(settings.storage_timeout),
        )
    if settings.tables_endpoint:
        return TableStore.from_managed_identity(
            settings.tables_endpoint,
            settings.azure_client_id,
            storage_timeout=_seconds(settings.storage_timeout),
        )
    raise ConfigurationError("set TABLES_CONNECTION_STRING (local) or TABLES_ENDPOINT (Azure)")


def operator_store(endpoint: str) -> Store:
    """A store for an operator's one-shot command (``scim_core.reindex``) from their machine:
    signed in with ``DefaultAzureCredential`` (``az login``); their identity needs the Storage
    Table Data Contributor role on the account."""
    from scim_core.store.table import TableStore

    return TableStore.from_operator_login(endpoint)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 120:
        raise ConfigurationError(
            f"STORAGE_TIMEOUT_SECONDS must be a number of seconds in (0, 120], not {text!r}"
        )
    return value


def build_router(settings: Settings, extra_producers: Sequence[Producer] = ()) -> Router:
    """The request handler of a process: the service over the configured store, behind the
    configured authenticator, with the app-owned extension's attributes, the enrichment
    properties the instance selects (GRAPH_SELECT) and the indexed attributes from the
    settings. ``extra_producers``: outbox producers besides scim_core's (graph_enrich's write-back
    and newcomer queues, which ``function_app`` passes in: scim_core never imports
    graph_enrich)."""
    try:
        app_schema = app_user_schema(settings.app_extension_attributes)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    types = default_resource_types(
        app_extension=app_schema,
        graph_extension=graph_user_schema(settings.graph_select, settings.graph_join),
    )
    producer, encoder = _events(settings)
    try:
        service = ScimService(
            build_store(settings),
            types,
            indexed_attributes=settings.indexed_attributes,
            producers=[*producers(settings), *extra_producers],
        )
    except IndexSettingError as exc:
        raise ConfigurationError(str(exc)) from exc
    service.event_uris = producer.uris()
    events = None
    if producer.enabled:
        from scim_core.events.feed import EventFeed
        from scim_core.events.poll import EventsEndpoint

        wait = _number("SCIM_EVENTS_POLL_WAIT_SECONDS", settings.events_poll_wait, 0, 120)
        events = EventsEndpoint(EventFeed(service.store), encoder, wait_seconds=wait)
    return Router(service, Authenticator.from_settings(settings), events)


def _events(settings: Settings) -> tuple[EventProducer, SetEncoder | None]:
    """The event producer (``SCIM_EVENTS``) and, when events are on, the SET encoder; a
    setting that cannot work is a start-up error, not a failed delivery later."""
    try:
        producer = event_producer(settings)
        encoder = None
        if producer.enabled and not _unresolved(settings.events_signing_key):
            encoder = SetEncoder.from_settings(settings)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if producer.enabled:
        _number("SCIM_EVENTS_RETENTION_DAYS", settings.events_retention_days, 0.01, 3650)
        from scim_core.events.push import PushConfig

        try:
            if not _unresolved(settings.events_push_token):
                PushConfig.from_settings(settings)  # a push that cannot work fails here
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    return producer, encoder


def _unresolved(secret: str | None) -> bool:
    """A Key Vault reference App Service has not resolved (yet: a first deploy writes the
    secret after the app starts). Provisioning must not fail for it: events are still recorded,
    and only their delivery waits (``/Events`` answers 503, the push run records the error)."""
    return bool(secret) and str(secret).startswith(UNRESOLVED_KEY_VAULT_REFERENCE)


def _number(name: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number in [{low}, {high}], not {text!r}")
    return value
