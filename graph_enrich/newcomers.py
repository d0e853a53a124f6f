"""Users Entra provisioned (or re-enabled) since the last run, enriched in this one.

Delta reports a user when it changes in Entra, not when Entra's provisioning assigns it to
this app: a user provisioned after its last change would wait for the hourly reconciliation
pass (graph_enrich/reconcile.py). Instead, the SCIM create (and Entra's re-enable) queues the
user in the outbox (queue ``en``, written in the create's own transaction:
graph_enrich/writeback_queue.py), and every run reads the queued users from Graph, one
``GET /users/{externalId | userName}?$select=...&$expand=manager($select=id)`` each, 20 to a
``$batch`` (Learn, "Combine multiple HTTP requests using JSON batching"; the single-user GET
takes ``$expand=manager``, unlike delta: "Use delta query ...").

An entry is removed (conditionally on its ETag) once the user is enriched, or once Graph says
it has no such user (404; the reconciliation pass asks again later, a day apart). Throttled,
failed or unsent reads stay queued for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from graph_enrich.batch import Batcher, Request
from graph_enrich.budget import Budget
from graph_enrich.config import SyncConfig
from graph_enrich.enricher import Enricher, Outcome
from graph_enrich.enrichment import Change, Policy
from graph_enrich.graph import REQUEST_TIMEOUT, GraphClient
from graph_enrich.writeback import graph_key, user_url
from graph_enrich.writeback_queue import ENRICH_QUEUE
from scim_core.store import Store

log = logging.getLogger("graph_enrich")

PAGE = 200
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Tally:
    enriched: int = 0
    unchanged: int = 0
    unmatched: int = 0
    deferred: int = 0
    errors: int = 0


def _query(config: SyncConfig) -> str:
    query = "?$select=" + ",".join(["id", *config.properties])
    if config.tracks_manager:
        query += "&$expand=manager($select=id)"
    return query


async def enrich_newcomers(
    graph: GraphClient,
    store: Store,
    config: SyncConfig,
    enricher: Enricher,
    budget: Budget,
    policy: Policy,
    pool: ThreadPoolExecutor,
) -> Tally:
    tally = Tally()
    batcher = Batcher(graph, budget)
    loop = asyncio.get_running_loop()
    after: str | None = None
    query = _query(config)
    while budget.allows(2 * REQUEST_TIMEOUT):
        entries = await loop.run_in_executor(
            None, store.outbox_read, "User", ENRICH_QUEUE, PAGE, after
        )
        if not entries:
            break
        after = entries[-1].key
        requests: list[Request] = []
        done: list[tuple[str, str | None]] = []
        for entry in entries:
            key = graph_key(entry.body.get("join") or {}, config)
            if key is None:
                done.append((entry.key, entry.etag))  # nothing to join by: reconcile's case
                tally.unmatched += 1
            else:
                requests.append(Request(entry.key, "GET", user_url(key) + query))
        answers = await batcher.send(requests)
        jobs: list[tuple[str, Change]] = []
        for scim_id, answer in answers.items():
            if answer.ok and isinstance(answer.body, dict):
                change = Change.from_graph(answer.body, config, expanded=True)
                if change is not None:
                    jobs.append((scim_id, change))
                    continue
            if answer.status in (400, 404):  # no such user in Graph (yet): reconcile's case
                tally.unmatched += 1
                done.append((scim_id, _etag(entries, scim_id)))
            elif answer.ok or answer.status == 0 or answer.throttled or answer.status >= 500:
                tally.deferred += 1
            else:
                tally.errors += 1
                log.warning("cannot enrich new user %s: Graph %s", scim_id, answer.error())
        outcomes = await loop.run_in_executor(
            None, _each, pool, lambda job: enricher.apply_to(job[0], job[1], policy), jobs
        )
        for (scim_id, _), outcome in zip(jobs, outcomes, strict=True):
            if outcome is Outcome.ERROR:
                tally.errors += 1
                continue
            done.append((scim_id, _etag(entries, scim_id)))
            if outcome is Outcome.ENRICHED:
                tally.enriched += 1
            elif outcome is Outcome.UNCHANGED:
                tally.unchanged += 1
            else:
                tally.unmatched += 1
        await loop.run_in_executor(None, store.outbox_remove, "User", ENRICH_QUEUE, done)
        if len(entries) < PAGE:
            break
    graph.waits += batcher.waits
    return tally


def _etag(entries: list[Any], scim_id: str) -> str | None:
    return next((e.etag for e in entries if e.key == scim_id), None)


def _each(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T]) -> list[R]:
    return list(pool.map(fn, items))
