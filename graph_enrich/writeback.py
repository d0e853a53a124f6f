"""The write-back pass of a sync run: the app's changes (outbox queue ``wb``,
graph_enrich/writeback_queue.py) written to Entra with ``PATCH /users/{id}``, 20 to a
``$batch`` (graph_enrich/batch.py).

Per entry (one per user: the app's later writes coalesce into it):

- **Graph accepted** (204): the user's Graph extension records ``writebackDateTime`` (and
  loses any ``writebackError``), then the entry is removed *conditionally on the ETag read*:
  had the app written again meanwhile, the entry holds the newer value and stays for the next
  run. The value comes back through delta sync into the Graph extension (origin
  ``enrichment``), which never queues a write-back: no loop, and the app's own (newer)
  value is never overwritten, since delta sync never touches the app's extension.
- **Graph refused** (4xx but 429; e.g. 400 for a user synced from on-premises AD, whose
  properties are mastered there; 404 for a user Graph does not have): ``writebackError``
  records Graph's status, code and message on the user, the run counts it, and the entry is
  removed: the same PATCH would be refused again. The app's next change tries again.
- **Throttled or not sent** (429/503/504 after the batch's retries, 5xx, the budget ran
  out): the entry stays; the next run sends it. A crash anywhere leaves the same state: the
  entry is removed only after Graph's answer was recorded.
- **Every item of a batch 403**: the identity lacks ``User.ReadWrite.All``: the run stops
  with that error and keeps every entry (granting the permission resumes them).

Storage per written user: the entry read (1/200), the user read and conditional replace
that record the outcome (2), the entry removal (batched by the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from graph_enrich.batch import Batcher, Request, Response
from graph_enrich.budget import Budget
from graph_enrich.config import SyncConfig
from graph_enrich.enricher import enrichment_rows
from graph_enrich.errors import Forbidden
from graph_enrich.graph import REQUEST_TIMEOUT, GraphClient
from graph_enrich.writeback_config import WritebackConfig
from graph_enrich.writeback_queue import WRITEBACK_QUEUE
from scim_core.errors import NotFound, PayloadTooLarge, PreconditionFailed
from scim_core.indexes import change_stamp
from scim_core.outbox import Producer
from scim_core.schema import GRAPH_USER_SCHEMA
from scim_core.store import CHANGE_INDEX, Store

log = logging.getLogger("graph_enrich")

#: Entries read per storage request (and sent per round of batches).
PAGE = 200
_ATTEMPTS = 5


@dataclass
class Tally:
    written: int = 0
    refused: int = 0
    deferred: int = 0


def graph_key(join: dict[str, Any], config: SyncConfig) -> str | None:
    """The ``{id | userPrincipalName}`` of ``/users/{...}`` for a queued user."""
    for name in ("objectId", config.join):
        value = join.get(name)
        # Neither an object id nor a UPN contains "/", and one would change the path.
        if isinstance(value, str) and value and "/" not in value:
            return value
    return None


def user_url(key: str) -> str:
    # A guest UPN holds "#EXT#": percent-encoded, or the rest would read as a fragment.
    return "/users/" + quote(key, safe="@")


async def write_back(
    graph: GraphClient,
    store: Store,
    config: SyncConfig,
    mapping: WritebackConfig,
    budget: Budget,
    now: str,
    pool: ThreadPoolExecutor,
    producers: Sequence[Producer] = (),
) -> Tally:
    """Send the pending write-backs, page by page, while the budget allows."""
    tally = Tally()
    batcher = Batcher(graph, budget)
    loop = asyncio.get_running_loop()
    after: str | None = None

    def recorder(scim_id: str, status: dict[str, Any]) -> None:
        record_status(store, scim_id, status, producers)

    while budget.allows(2 * REQUEST_TIMEOUT):
        entries = await loop.run_in_executor(
            None, store.outbox_read, "User", WRITEBACK_QUEUE, PAGE, after
        )
        if not entries:
            break
        after = entries[-1].key
        requests: list[Request] = []
        statuses: dict[str, dict[str, Any]] = {}
        for entry in entries:
            key = graph_key(entry.body.get("join") or {}, config)
            if key is None:
                statuses[entry.key] = {
                    "writebackError": f"the user has no {config.join} to join to Graph",
                    "writebackAt": now,
                }
            else:
                requests.append(Request(entry.key, "PATCH", user_url(key), entry.body["patch"]))
        answers = await batcher.send(requests)
        _check_permission(list(answers.values()))
        for entry_key, answer in answers.items():
            if answer.ok:
                statuses[entry_key] = {"writebackDateTime": now, "writebackError": None}
            elif answer.status >= 500 or answer.throttled or answer.status == 0:
                tally.deferred += 1
            else:
                statuses[entry_key] = {"writebackError": answer.error(), "writebackAt": now}
                log.warning("write-back of user %s refused: %s", entry_key, answer.error())
        await loop.run_in_executor(None, _each, pool, recorder, list(statuses.items()))
        done = [(e.key, e.etag) for e in entries if e.key in statuses]
        await loop.run_in_executor(None, store.outbox_remove, "User", WRITEBACK_QUEUE, done)
        tally.written += sum(1 for s in statuses.values() if "writebackDateTime" in s)
        tally.refused += sum(1 for s in statuses.values() if "writebackDateTime" not in s)
        if len(entries) < PAGE:
            break
    graph.waits += batcher.waits
    return tally


def _each(
    pool: ThreadPoolExecutor,
    fn: Callable[[str, dict[str, Any]], None],
    items: list[tuple[str, dict[str, Any]]],
) -> None:
    list(pool.map(lambda kv: fn(*kv), items))


def _check_permission(answers: list[Response]) -> None:
    if answers and all(a.status == 403 for a in answers):
        raise Forbidden(
            403,
            "Authorization_RequestDenied",
            answers[0].error() + " Write-back needs the Microsoft Graph application "
            "permission User.ReadWrite.All (infra/graph-permissions.bicep, "
            "grantUserReadWriteAll=true).",
        )


def record_status(
    store: Store, scim_id: str, status: dict[str, Any], producers: Sequence[Producer] = ()
) -> None:
    """The outcome on the user's Graph extension (``writebackDateTime``,
    ``writebackError``), conditional on the ETag read, retried when the user changed."""
    status = dict(status)
    at = status.pop("writebackAt", None)
    for _ in range(_ATTEMPTS):
        try:
            stored = store.get("User", scim_id)
        except NotFound:
            return  # deprovisioned meanwhile: nothing to show it on
        ext = dict(stored.doc.get(GRAPH_USER_SCHEMA) or {})
        for name, value in status.items():
            if value is None:
                ext.pop(name, None)
            else:
                ext[name] = value
        new = dict(stored.doc)
        new[GRAPH_USER_SCHEMA] = ext
        new["meta"] = {
            **stored.doc.get("meta", {}),
            "lastModified": status.get("writebackDateTime") or at or "",
        }
        try:
            keys = {**stored.keys, CHANGE_INDEX: change_stamp(new)}
            rows = enrichment_rows(producers, scim_id, stored.doc, new)
            store.replace("User", new, keys, stored.etag, outbox=rows)
            return
        except PreconditionFailed:
            continue
        except (NotFound, PayloadTooLarge) as exc:
            log.warning("cannot record the write-back of user %s: %s", scim_id, exc)
            return
    log.warning("cannot record the write-back of user %s: it kept changing", scim_id)
