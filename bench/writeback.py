"""Benchmark of issue 14's two outbox consumers of the Graph timer, through the production path
(graph_enrich.sync with msgraph-sdk's request adapter, TableStore on Azurite, the fake Graph
over loopback):

1. **Write-back**: N users whose app data changed (a pending ``wb`` outbox row each) written to
   Entra with ``PATCH /users/{id}``, 20 to a ``$batch``: users/s, Graph requests per changed
   user (about 1/20), storage requests per changed user.
2. **Newcomers**: N users Entra provisioned after Graph's initial round saw them (an ``en`` row
   each), enriched in one run with one batched ``GET /users/{id}`` each: Graph and storage
   requests per user.

    python -m bench.writeback                 # 10,000 users
    python -m bench.writeback --users 2000
    python -m bench --parts writeback         # as a part of the full bench

The rows are written as the SCIM writes would write them (the producers of
graph_enrich/writeback_queue.py, applied to each user's before/after documents), but with
``outbox_put`` in bulk: the SCIM side's cost is the app-side bench's business. Each phase runs
as timer-sized runs until its queue is empty. Figures only, no assertions; the fake Graph runs
in this process, so its JSON work shares the CPU with the sync.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.graph_sync import _graph_user, _scim_user
from bench.servers import BenchAzurite
from graph_enrich import SyncOptions, run_sync
from graph_enrich.writeback_config import WritebackConfig
from graph_enrich.writeback_queue import (
    ENRICH_QUEUE,
    WRITEBACK_QUEUE,
    enrichment_producer,
    writeback_producer,
)
from scim_core.outbox import ChangeRecord
from scim_core.schema import APP_USER_SCHEMA
from scim_core.settings import Settings
from scim_core.store import Outbox
from scim_core.store.table import TableStore
from tests.graph.conftest import FakeCredential
from tests.graph.fake_graph import FakeGraph

APP_ATTRIBUTES = json.dumps(
    [{"name": "badgeId", "type": "string"}, {"name": "hireDate", "type": "dateTime"}]
)
WRITEBACK = "badgeId=employeeId,hireDate=employeeHireDate"


def _until_empty(
    label: str,
    settings: Settings,
    store: TableStore,
    fake: FakeGraph,
    queue: str,
    users: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Timer runs until the queue is empty; their figures summed."""
    graph_before = len(fake.requests)
    batches_before = len(fake.batch.batches)
    total: dict[str, Any] = {"runs": 0, "storage_requests": 0, "duration": 0.0, "done": 0}
    options = SyncOptions(credential=FakeCredential(), reconcile_every=10**7)
    while store.outbox_read("User", queue, 1) and total["runs"] < 20:
        report = run_sync(settings, store, options)
        total["runs"] += 1
        total["storage_requests"] += report.storage_requests or 0
        total["duration"] += report.duration
        total["done"] += report.written_back if queue == WRITEBACK_QUEUE else report.newcomers
        if report.error:
            log(f"  run {total['runs']}: {report.error}")
    graph = len(fake.requests) - graph_before
    total["graph_requests"] = graph
    total["batches"] = len(fake.batch.batches) - batches_before
    total["users_per_s"] = round(users / total["duration"]) if total["duration"] else None
    total["graph_requests_per_user"] = round(graph / users, 4)
    total["storage_requests_per_user"] = round(total["storage_requests"] / users, 3)
    log(
        f"{label}: {total['done']:,} of {users:,} users in {total['runs']} run(s), "
        f"{total['duration']:.1f} s = {total['users_per_s']:,} users/s; Graph requests "
        f"{graph:,} ({total['batches']:,} $batch) = {total['graph_requests_per_user']} per user; "
        f"storage requests {total['storage_requests']:,} = "
        f"{total['storage_requests_per_user']} per user"
    )
    return total


def run(work: Path, *, users: int, log: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(14)
    figures: dict[str, Any] = {"users": users}
    with BenchAzurite(work / "azurite-writeback") as azurite:
        fake = FakeGraph(page_size=200)
        with fake.serve():
            settings = Settings.from_env(
                {
                    "GRAPH_BASE_URL": fake.base_url,
                    "SCIM_APP_EXTENSION_ATTRIBUTES": APP_ATTRIBUTES,
                    "GRAPH_WRITEBACK": WRITEBACK,
                }
            )
            mapping = WritebackConfig.from_settings(settings)
            options = SyncOptions(credential=FakeCredential(), reconcile_every=10**7)

            # --- 1. write-back: users provisioned and enriched, then changed by the app -------
            store = TableStore.from_connection_string(azurite.connection_string, table_prefix="wb")
            store.create_tables()
            ids = [str(uuid.uuid4()) for _ in range(users)]
            fake.bulk_users([(oid, _graph_user(n, rng)) for n, oid in enumerate(ids)])
            store.bulk_load("User", (_scim_user(n, oid) for n, oid in enumerate(ids)))
            while run_sync(settings, store, options).outcome == "partial":
                pass  # the initial round: every user enriched (objectId known)
            produce = writeback_producer(mapping)
            rows: list[Outbox] = []
            for stored in store.scan("User"):
                after = {
                    **stored.doc,
                    APP_USER_SCHEMA: {"badgeId": f"B-{stored.id[:8]}", "hireDate": "2026-03-02"},
                }
                change = ChangeRecord("User", stored.id, "patch", stored.doc, after, "app")
                rows += produce(change)
            for start in range(0, len(rows), 1000):
                store.outbox_put("User", rows[start : start + 1000])
            figures["writeback"] = _until_empty(
                f"write-back of {users:,} changed users", settings, store, fake,
                WRITEBACK_QUEUE, users, log,
            )  # fmt: skip

            # --- 2. newcomers: provisioned after Graph's initial round saw them ----------------
            fresh = TableStore.from_connection_string(azurite.connection_string, table_prefix="en")
            fresh.create_tables()
            while run_sync(settings, fresh, options).outcome == "partial":
                pass  # Graph's round: no SCIM user yet, every Graph user unmatched
            fresh.bulk_load("User", (_scim_user(n, oid) for n, oid in enumerate(ids)))
            newcomer = enrichment_producer()
            queued = [
                row
                for stored in fresh.scan("User")
                for row in newcomer(
                    ChangeRecord("User", stored.id, "create", None, stored.doc, "provisioning")
                )
            ]
            for start in range(0, len(queued), 1000):
                fresh.outbox_put("User", queued[start : start + 1000])
            figures["newcomers"] = _until_empty(
                f"enrichment of {users:,} newly provisioned users", settings, fresh, fake,
                ENRICH_QUEUE, users, log,
            )  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.writeback", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scim-bench-wb-") as tmp:
        figures = run(Path(tmp), users=args.users, log=log)
    figures["duration_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
