"""Benchmark of the Graph delta sync: N Graph users (200 per page) from the fake Graph into a
store of N SCIM users on Azurite, through the production path (msgraph-sdk's request adapter,
graph_enrich.sync, TableStore).

    python -m bench.graph_sync                    # 50,000 users, indexed Azurite
    python -m bench.graph_sync --users 20000 --stock-azurite

Prints, for the initial full round (every Graph user changed: the first run on a tenant, or a
resync) and for an incremental delta round (``--changed`` of the users changed): users/s and
storage requests per changed user (target: at most 3). Each round runs as timer-sized runs
(``--budget``, 240 s like the timer) until it completes, each resuming from the checkpoint of
the one before. Figures only, no assertions.

Azurite runs in memory (file persistence re-serialises the whole database every few seconds).
By default ``bench/azurite_index.js`` is preloaded so that Azurite finds rows by RowKey as Azure
Table Storage does; stock Azurite scans the whole partition on every point read and slows down
linearly with table size (``--stock-azurite`` to see it). The fake Graph runs in this process,
so its JSON work shares the CPU with the sync: the Graph side costs nothing like that in Azure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from devhost.azurite import HOST, Azurite
from graph_enrich import SyncOptions, run_sync
from graph_enrich.budget import RUN_BUDGET_SECONDS
from scim_core.settings import Settings
from scim_core.store.table import TableStore
from tests.graph.conftest import FakeCredential
from tests.graph.fake_graph import FakeGraph

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "bench" / "azurite_index.js"
DEPARTMENTS = ["Sales", "R&D", "Finance", "Legal", "Operations", "Marketing", "Support"]


class _MemoryAzurite(Azurite):
    def __init__(self, location: Path, indexed: bool) -> None:
        super().__init__(ROOT, location)
        self.indexed = indexed

    def _launch(self, launcher: Path) -> None:
        options = ["--max-old-space-size=6144"] + ([f"--require={SHIM}"] if self.indexed else [])
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(launcher),
                    "--tableHost",
                    HOST,
                    "--tablePort",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                    "--loose",
                ],
                cwd=ROOT,
                env={**os.environ, "NODE_OPTIONS": " ".join(options)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )


def _scim_user(n: int, object_id: str) -> tuple[dict[str, Any], dict[str, str | None]]:
    """A user as the SCIM service stores an Entra create (externalId = the object id)."""
    user_name = f"user{n:06d}@contoso.com"
    now = "2026-01-01T00:00:00.000Z"
    doc = {
        "id": str(uuid.uuid4()),
        "userName": user_name,
        "externalId": object_id,
        "active": True,
        "displayName": f"User {n}",
        "name": {"givenName": "User", "familyName": str(n)},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "meta": {"resourceType": "User", "created": now, "lastModified": now},
    }
    return doc, {"userName": user_name.casefold(), "externalId": object_id}


def _graph_user(n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "userPrincipalName": f"user{n:06d}@contoso.com",
        "mail": f"user{n:06d}@contoso.com",
        "displayName": f"User {n}",
        "givenName": "User",
        "surname": str(n),
        "jobTitle": rng.choice(["Engineer", "Manager", "Analyst", "Designer"]),
        "department": rng.choice(DEPARTMENTS),
        "officeLocation": f"{rng.randint(1, 40)}/1{n % 999}",
        "companyName": "Contoso",
        "employeeId": f"E{n:06d}",
        "mobilePhone": f"+1 425 555 {n % 10000:04d}",
        "businessPhones": [f"+1 425 555 {n % 9999:04d}"],
        "accountEnabled": True,
    }


def _run(label: str, settings: Settings, store: TableStore, options: SyncOptions) -> dict[str, Any]:
    """Timer-sized runs until the round reaches its deltaLink (each resumes from the
    checkpoint of the one before), with their figures summed."""
    total: dict[str, Any] = {
        "runs": 0,
        "pages": 0,
        "changes": 0,
        "enriched": 0,
        "storage_requests": 0,
        "duration": 0.0,
        "reconcile_seconds": 0.0,
    }
    report = None
    while report is None or report.outcome == "partial":
        report = run_sync(settings, store, options)
        total["runs"] += 1
        for key in ("pages", "changes", "enriched", "duration", "reconcile_seconds"):
            total[key] += getattr(report, key)
        total["storage_requests"] += report.storage_requests or 0
        if report.error:
            print(f"  run {total['runs']}: {report.error}", flush=True)
    total["outcome"] = report.outcome
    round_seconds = total["duration"] - total["reconcile_seconds"]
    total["users_per_s"] = round(total["changes"] / round_seconds)
    total["requests_per_changed_user"] = round(
        total["storage_requests"] / max(1, total["enriched"]), 3
    )
    print(
        f"{label}: {total['changes']:,} Graph changes in {total['pages']} pages over "
        f"{total['runs']} run(s) of at most {options.budget_seconds:.0f} s, "
        f"{total['enriched']:,} users enriched ({report.outcome})\n"
        f"  delta round {round_seconds:.1f} s = {total['users_per_s']:,} users/s; "
        f"reconciliation pass {total['reconcile_seconds']:.1f} s\n"
        f"  storage requests {total['storage_requests']:,} = "
        f"{total['requests_per_changed_user']:.3f} per changed user",
        flush=True,
    )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.graph_sync", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument(
        "--changed",
        type=float,
        default=0.05,
        help="share of users changed for the incremental round (default 0.05)",
    )
    parser.add_argument("--workers", type=int, default=SyncOptions().workers)
    parser.add_argument(
        "--budget",
        type=float,
        default=RUN_BUDGET_SECONDS,
        help="seconds per run, as the timer's (default %(default)s)",
    )
    parser.add_argument(
        "--stock-azurite",
        action="store_true",
        help="without bench/azurite_index.js (Azurite's linear-scan lookups)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(7)
    figures: dict[str, Any] = {
        "users": args.users,
        "page_size": args.page_size,
        "azurite": "stock" if args.stock_azurite else "indexed",
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        _MemoryAzurite(Path(tmp), not args.stock_azurite) as azurite,
    ):
        store = TableStore.from_connection_string(azurite.connection_string)
        store.create_tables()
        fake = FakeGraph(page_size=args.page_size)
        ids = [str(uuid.uuid4()) for _ in range(args.users)]
        fake.bulk_users([(oid, _graph_user(n, rng)) for n, oid in enumerate(ids)])
        started = time.perf_counter()
        store.bulk_load("User", (_scim_user(n, oid) for n, oid in enumerate(ids)))
        seeded = time.perf_counter() - started
        print(
            f"seeded {args.users:,} SCIM users in {seeded:.1f} s "
            f"({args.users / seeded:,.0f} users/s), Azurite {figures['azurite']}",
            flush=True,
        )
        figures["seed_users_per_s"] = round(args.users / seeded)
        with fake.serve():
            settings = Settings.from_env({"GRAPH_BASE_URL": fake.base_url})
            options = SyncOptions(
                credential=FakeCredential(), workers=args.workers, budget_seconds=args.budget
            )
            figures["initial"] = _run("initial full round", settings, store, options)
            changed = rng.sample(ids, max(1, int(args.users * args.changed)))
            for oid in changed:
                fake.put_user(oid, jobTitle="Principal", officeLocation="HQ")
            figures["incremental"] = _run(
                f"incremental round ({len(changed):,} changed)", settings, store, options
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
