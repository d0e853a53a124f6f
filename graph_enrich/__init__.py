"""Microsoft Graph enrichment of provisioned users: delta sync on a timer, change
notifications as an early trigger, and the app's data written back to Entra. Entra provisions
the basics over SCIM; this adds the Graph properties the application needs under the product's
extension schema (``scim_core.schema.GRAPH_USER_SCHEMA``). docs/graph-enrichment.md and
docs/graph-writeback.md tell the whole story.

Uses scim_core's store (``scim_core.store.Store``), never ``function_app``. msgraph-sdk and
azure-identity load only inside a run (``graph.py``, ``credentials.py``), and the run's own
modules (asyncio and the sync) load on first use of the names below: the HTTP side imports
only ``graph_enrich.writeback_queue`` (its outbox producers) at its cold start.

    run_sync(settings, store, SyncOptions(...)) -> SyncReport     one run (the timer's body)
    receive(WebhookRequest(...), settings, store) -> WebhookResponse   the webhook
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scim_core.schema import GRAPH_USER_SCHEMA

if TYPE_CHECKING:
    from graph_enrich.notifications import WebhookRequest, WebhookResponse, receive
    from graph_enrich.sync import SyncOptions, SyncReport, run_sync

_LAZY = {
    "SyncOptions": "graph_enrich.sync",
    "SyncReport": "graph_enrich.sync",
    "run_sync": "graph_enrich.sync",
    "WebhookRequest": "graph_enrich.notifications",
    "WebhookResponse": "graph_enrich.notifications",
    "receive": "graph_enrich.notifications",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the run's names load with their module on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'graph_enrich' has no attribute {name!r}")


__all__ = [
    "GRAPH_USER_SCHEMA",
    "SyncOptions",
    "SyncReport",
    "WebhookRequest",
    "WebhookResponse",
    "receive",
    "run_sync",
]
