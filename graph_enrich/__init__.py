"""Microsoft Graph enrichment of provisioned users: delta sync on a timer, change
notifications as an early trigger. Entra provisions the basics over SCIM; this adds the Graph
properties the application needs under the product's extension schema
(``scim_core.schema.GRAPH_USER_SCHEMA``). docs/graph-enrichment.md tells the whole story.

Uses scim_core's store (``scim_core.store.Store``), never ``function_app``. msgraph-sdk and
azure-identity load only inside a run (``graph.py``, ``credentials.py``): importing this package
is cheap, so the HTTP cold start does not pay for them.

    run_sync(settings, store, SyncOptions(...)) -> SyncReport     one run (the timer's body)
    receive(WebhookRequest(...), settings, store) -> WebhookResponse   the webhook
"""

from graph_enrich.notifications import WebhookRequest, WebhookResponse, receive
from graph_enrich.sync import SyncOptions, SyncReport, run_sync
from scim_core.schema import GRAPH_USER_SCHEMA

__all__ = [
    "GRAPH_USER_SCHEMA",
    "SyncOptions",
    "SyncReport",
    "WebhookRequest",
    "WebhookResponse",
    "receive",
    "run_sync",
]
