"""The reconciliation pass: SCIM users the delta feed cannot bring up to date by itself.

1. **Provisioned after their Graph change was seen.** Delta reports a user when it changes in
   Entra, not when Entra's provisioning assigns it to this app; a user provisioned after its
   last change (the usual case: the initial full round sees every user of the tenant, most of
   them not provisioned yet) would never be enriched. Remembering the unmatched Graph ids
   does not scale -- they are the whole tenant minus the app's users -- and enriching inside
   the SCIM create would tie Entra's POST to Graph. So this pass lists the SCIM users
   (``Store.scan``: O(app users), documents only) every ``reconcile_every`` seconds and reads the
   ones without enrichment from Graph, ``GET /users/{externalId | userName}``. A user Graph
   does not know is retried after a day, not on every pass.
2. **Deleted while the delta token was expired.** A full round (after 410 / syncStateNotFound)
   lists the users that exist; users deleted in the gap simply do not appear (Microsoft Learn,
   "Use delta query ...": resources "created and deleted prior to the initial delta query won't
   be returned"). Every user a full round sees gets the round's start in
   ``fullSyncDateTime``; after the round, enriched users with an older stamp are checked one by
   one, and those Graph no longer has are recorded as removed.

Graph reads run 8 at a time; the pass stops when the budget does and simply runs again next
time (it is idempotent: what it fixed no longer qualifies).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from graph_enrich.budget import Budget
from graph_enrich.config import SyncConfig
from graph_enrich.enricher import Enricher, Outcome
from graph_enrich.enrichment import Change, Policy, extension
from graph_enrich.errors import GraphError, ResyncRequired
from graph_enrich.graph import REQUEST_TIMEOUT, GraphClient
from graph_enrich.state import RECONCILE, Cursor, CursorStore, iso, parse_iso, read_state
from scim_core.errors import ScimError
from scim_core.store import Store, Stored

log = logging.getLogger("graph_enrich")

RECONCILE_EVERY_SECONDS = 3600.0
#: A SCIM user Graph does not know is asked about again after this long.
MISSING_RETRY = timedelta(days=1)
MAX_MISSING = 5000
CONCURRENCY = 8


async def reconcile(
    graph: GraphClient,
    store: Store,
    config: SyncConfig,
    enricher: Enricher,
    cursors: CursorStore,
    cursor: Cursor,
    budget: Budget,
    now: datetime,
    every: float,
) -> int:
    """Run the pass if it is due; returns the number of users it wrote."""
    record = read_state(store, RECONCILE)
    last = parse_iso(record.get("completed"))
    if cursor.verify is None and last is not None and (now - last).total_seconds() < every:
        return 0
    if not budget.allows(2 * REQUEST_TIMEOUT):
        return 0
    loop = asyncio.get_running_loop()
    users: list[Stored] = await loop.run_in_executor(None, lambda: list(store.scan("User")))
    missing: dict[str, str] = {
        k: v
        for k, v in dict(record.get("missing") or {}).items()
        if (parse_iso(v) or now) > now - MISSING_RETRY
    }
    jobs: list[tuple[Stored, str, bool]] = []  # (user, Graph key, verifying)
    for user in users:
        ext = extension(user.doc)
        if not ext.get("objectId"):
            key = _join_key(user.doc, config)
            if key and user.id not in missing:
                jobs.append((user, key, False))
        elif (
            cursor.verify is not None
            and "removedReason" not in ext
            and ext.get("fullSyncDateTime") != cursor.verify
        ):
            jobs.append((user, str(ext["objectId"]), True))
    policy = Policy(config, iso(now), cursor.verify, snapshot=True)
    limit = asyncio.Semaphore(CONCURRENCY)
    written = 0
    complete = True

    async def one(user: Stored, key: str, verifying: bool) -> Outcome | None:
        async with limit:
            if not budget.allows(2 * REQUEST_TIMEOUT):
                return None
            try:
                item = await graph.get_user(key)
                if item is None and not verifying and config.join == "userName":
                    # A guest's userName is its stripped alias@theirdomain, which GET
                    # /users/{key} does not know (graph_enrich/guests.py): one more request.
                    item = await graph.find_guest(key)
                change = Change.from_graph(item, config, expanded=True) if item else None
                if change is None and verifying:
                    change = Change(key, removed=await graph.removed_reason(key))
            except ResyncRequired:
                raise
            except GraphError as exc:
                if exc.status != 400:  # 400: not a valid id or UPN, as good as unknown
                    raise
                change = None
            if change is None:
                missing[user.id] = iso(now)
                return Outcome.UNMATCHED
            return await loop.run_in_executor(None, enricher.apply_to, user.id, change, policy)

    for start in range(0, len(jobs), CONCURRENCY * 4):
        batch = jobs[start : start + CONCURRENCY * 4]
        outcomes = await asyncio.gather(*(one(*job) for job in batch))
        written += sum(1 for o in outcomes if o is Outcome.ENRICHED)
        if any(o is None for o in outcomes):
            complete = False
            break
    _save(store, record, missing, now if complete else None, len(users))
    if complete and cursor.verify is not None:
        cursor.verify = None
        cursors.save(cursor)
    if len(missing) > max(10, len(users) // 2):
        log.warning(
            "graph sync: %d of %d SCIM users have no Graph user with their %s; check "
            "GRAPH_JOIN and the Entra attribute mapping (docs/graph-enrichment.md)",
            len(missing),
            len(users),
            config.join,
        )
    return written


def _join_key(doc: dict[str, Any], config: SyncConfig) -> str | None:
    value = doc.get("externalId" if config.join == "externalId" else "userName")
    # Neither an object id nor a UPN contains "/", and one would change the request's path.
    return value if isinstance(value, str) and value and "/" not in value else None


def _save(
    store: Store,
    record: dict[str, Any],
    missing: dict[str, str],
    completed: datetime | None,
    users: int,
) -> None:
    kept = dict(sorted(missing.items(), key=lambda kv: kv[1])[-MAX_MISSING:])
    new = {**record, "missing": kept, "users": users}
    if completed is not None:
        new["completed"] = iso(completed)
    found = store.get_state(RECONCILE)
    try:
        store.put_state(RECONCILE, new, None if found is None else found[1])
    except ScimError as exc:  # best effort: the pass simply runs again
        log.warning("graph sync: could not record the reconciliation pass: %s", exc)
