"""The change-notification subscription on ``users``, kept alive by the timer.

Microsoft Learn, "Receive change notifications through webhooks" and "subscription resource
type": a subscription on users lives at most 41,760 minutes (just under 29 days) and must be
renewed (``PATCH expirationDateTime``) before it expires, or Graph deletes it. Creating one
makes Graph POST a validation token to the notification URL first (the webhook in
``graph_enrich.notifications`` answers it). ``clientState`` cannot be changed on an existing
subscription, so a new GRAPH_CLIENT_STATE (or URL) means a new subscription.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from graph_enrich.config import SyncConfig
from graph_enrich.errors import ConfigurationError
from graph_enrich.graph import GraphClient
from graph_enrich.state import SUBSCRIPTION, iso, parse_iso, read_state, update_state
from scim_core.store import Store

#: 28 days: inside the 41,760-minute maximum with a day to spare for clock skew.
LIFETIME = timedelta(days=28)
#: Renewed when less than this is left; the timer runs every 15 minutes by default.
RENEW_BEFORE = timedelta(days=7)


async def maintain_subscription(
    graph: GraphClient, store: Store, config: SyncConfig, now: datetime
) -> str | None:
    """Create, renew, replace or delete the subscription as the settings ask; returns what it
    did ("created", "renewed", "deleted") or None when nothing was due."""
    record = read_state(store, SUBSCRIPTION)
    sub_id = record.get("id")
    if not config.notification_url:
        if not sub_id:
            return None
        await graph.delete_subscription(sub_id)
        _save(store, {})
        return "deleted"
    if not config.client_state:
        raise ConfigurationError(
            "GRAPH_NOTIFICATION_URL is set but GRAPH_CLIENT_STATE is not: "
            "change notifications need a secret clientState"
        )
    fingerprint = _fingerprint(config.notification_url, config.client_state)
    same = sub_id is not None and record.get("fingerprint") == fingerprint
    expires = parse_iso(record.get("expires"))
    if same and expires is not None and expires - now > RENEW_BEFORE and not record.get("renew"):
        return None
    new_expiry = now + LIFETIME
    if sub_id is not None and same:
        renewed = await graph.renew_subscription(sub_id, new_expiry)
        if renewed is not None:
            _save(
                store,
                {
                    "id": sub_id,
                    "fingerprint": fingerprint,
                    "expires": renewed.get("expirationDateTime") or iso(new_expiry),
                },
            )
            return "renewed"
    elif sub_id:
        await graph.delete_subscription(sub_id)
    created = await graph.create_subscription(
        config.notification_url, config.client_state, new_expiry
    )
    _save(
        store,
        {
            "id": created.get("id"),
            "fingerprint": fingerprint,
            "expires": created.get("expirationDateTime") or iso(new_expiry),
        },
    )
    return "created"


def _fingerprint(url: str, client_state: str) -> str:
    """Tells a changed URL or clientState apart without storing the secret."""
    return hashlib.sha256(f"{url}\n{client_state}".encode()).hexdigest()[:32]


def _save(store: Store, value: dict[str, object]) -> None:
    update_state(store, SUBSCRIPTION, lambda _: dict(value))
