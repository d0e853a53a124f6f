"""The two outbox producers of graph_enrich (issue 13's transactional outbox): each SCIM write
calls them, and the rows they return are written in the *same* storage transaction as the
change, so a change the app made is never lost between the SCIM answer and the timer.

- :func:`writeback_producer` (queue ``wb``, key = SCIM user id, coalesced): the app (origin
  ``app``, scope ``app:write``) changed a mapped attribute of its extension. The row carries
  the PATCH body and the join keys, so the timer writes it to Graph without reading the user.
  Writes of any other origin never queue one: Entra's provisioning never writes the app's
  extension, and the sync's own writes (origin ``enrichment``: the value written back comes
  back through delta sync) change only the Graph extension. That is what keeps the loop open.
- :func:`enrichment_producer` (queue ``en``): Entra created a user, or re-enabled one
  (``active`` false -> true): the next timer run reads it from Graph once
  (graph_enrich/newcomers.py), instead of waiting for the hourly reconciliation pass.
"""

from __future__ import annotations

from typing import Any

from graph_enrich.writeback_config import WritebackConfig
from scim_core.outbox import ChangeRecord, Producer
from scim_core.schema import APP_USER_SCHEMA, GRAPH_USER_SCHEMA
from scim_core.settings import Settings
from scim_core.store import Outbox

WRITEBACK_QUEUE = "wb"
ENRICH_QUEUE = "en"


def join_keys(doc: dict[str, Any]) -> dict[str, str]:
    """What the timer joins the user to Graph by: the object id once enrichment found it,
    else externalId and userName (GRAPH_JOIN picks)."""
    graph = doc.get(GRAPH_USER_SCHEMA)
    keys = {
        "objectId": graph.get("objectId") if isinstance(graph, dict) else None,
        "externalId": doc.get("externalId"),
        "userName": doc.get("userName"),
    }
    return {k: v for k, v in keys.items() if isinstance(v, str) and v}


def writeback_producer(config: WritebackConfig) -> Producer:
    def produce(change: ChangeRecord) -> list[Outbox]:
        if change.rtype != "User" or change.origin != "app" or change.after is None:
            return []
        before = config.values((change.before or {}).get(APP_USER_SCHEMA))
        after = config.values(change.after.get(APP_USER_SCHEMA))
        if before == after:
            return []
        body = {
            "patch": config.patch_body(change.after.get(APP_USER_SCHEMA) or {}),
            "join": join_keys(change.after),
            "changed": (change.after.get("meta") or {}).get("lastModified"),
        }
        return [Outbox(WRITEBACK_QUEUE, change.id, body, replace=True)]

    return produce


def enrichment_producer() -> Producer:
    def produce(change: ChangeRecord) -> list[Outbox]:
        if change.rtype != "User" or change.origin != "provisioning" or change.after is None:
            return []
        created = change.kind == "create"
        re_enabled = (
            change.before is not None
            and change.before.get("active") is False
            and change.after.get("active") is True
        )
        if not (created or re_enabled):
            return []
        return [Outbox(ENRICH_QUEUE, change.id, {"join": join_keys(change.after)}, replace=True)]

    return produce


def producers(config: WritebackConfig) -> list[Producer]:
    """Enrichment of newcomers always, write-back when GRAPH_WRITEBACK maps something."""
    return [enrichment_producer(), *([writeback_producer(config)] if config.enabled else [])]


def outbox_producers(settings: Settings) -> list[Producer]:
    """What ``function_app`` registers with the SCIM service (``scim_core.wiring``). A
    GRAPH_WRITEBACK Graph would refuse is a :class:`ConfigurationError` here, at start-up."""
    return producers(WritebackConfig.from_settings(settings))
