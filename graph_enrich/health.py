"""The Graph sync's state for the status route: two point reads of the state table, no scan.

- ``graph.sync.status`` (graph_enrich/sync.py): the last run, the last success, the last error,
  consecutive failures;
- ``graph.reconcile`` (graph_enrich/reconcile.py): when the reconciliation pass last completed
  and how many SCIM users it listed (the user count, as of that pass).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graph_enrich.state import RECONCILE, STATUS, parse_iso, read_state
from scim_core.store import Store


def sync_health(store: Store, now: datetime) -> dict[str, Any]:
    status = read_state(store, STATUS)
    reconcile = read_state(store, RECONCILE)
    last = dict(status.get("lastRun") or {})
    success = parse_iso(status.get("lastSuccess"))
    error = dict(status.get("lastError") or {})
    return {
        "lastRun": {
            k: last[k]
            for k in ("finished", "outcome", "round", "changes", "enriched", "error", "error_kind")
            if k in last
        }
        or None,
        "lastSuccess": status.get("lastSuccess"),
        "lagSeconds": round((now - success).total_seconds()) if success else None,
        "consecutiveFailures": int(status.get("consecutiveFailures", 0) or 0),
        "lastError": {k: error[k] for k in ("at", "kind", "message") if k in error} or None,
        "users": {"count": reconcile.get("users"), "countedAt": reconcile.get("completed")},
    }
