"""``python -m bench.azurite_probe``: how Azurite's cost grows with the rows of one partition.

Loads users with the store's batch path in steps and, after each step, times point reads
(``GET`` of a document) and RowKey range queries (an ``externalId`` lookup). Modes:

- ``stock``: Azurite as ``make run`` starts it (file persistence in --location);
- ``memory``: ``--inMemoryPersistence``;
- ``indexed``: in memory with ``bench/azurite_index.js`` (what the benchmark uses).

    python -m bench.azurite_probe --mode stock --step 5000 --steps 4
    python -m bench.azurite_probe --mode indexed --step 20000 --steps 5

Not part of ``make bench`` (stock Azurite needs minutes for 20k users); bench/README.md has
the figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.servers import ROOT, BenchAzurite
from bench.stats import percentile
from devhost.azurite import Azurite
from scim_core.store.table import TableStore


def _user(n: int) -> tuple[dict[str, Any], dict[str, str | None]]:
    name = f"user{n}@contoso.com"
    doc = {
        "id": str(uuid.uuid4()),
        "userName": name,
        "externalId": f"ext{n}",
        "active": True,
        "displayName": f"User {n}",
        "emails": [{"value": name, "type": "work"}],
        "meta": {"resourceType": "User"},
    }
    return doc, {"userName": name, "externalId": f"ext{n}"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.azurite_probe")
    parser.add_argument("--mode", choices=["stock", "memory", "indexed"], default="stock")
    parser.add_argument("--step", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        location = Path(tmp)
        azurite: Azurite = (
            Azurite(ROOT, location)
            if args.mode == "stock"
            else BenchAzurite(location, indexed=args.mode == "indexed")
        )
        with azurite:
            store = TableStore.from_connection_string(azurite.connection_string)
            store.create_tables()
            loaded: list[str] = []
            print(f"{'users':>8} {'load users/s':>13} {'get p50 ms':>11} {'range p50 ms':>13}")
            for _ in range(args.steps):
                items = [_user(len(loaded) + i) for i in range(args.step)]
                began = time.perf_counter()
                store.bulk_load("User", iter(items), workers=8)
                rate = args.step / (time.perf_counter() - began)
                loaded += [doc["id"] for doc, _ in items]
                gets, ranges = [], []
                for k in range(30):
                    began = time.perf_counter()
                    store.get("User", loaded[(k * 7919) % len(loaded)])
                    gets.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    store.lookup("User", "externalId", f"ext{(k * 7919) % len(loaded)}")
                    ranges.append(time.perf_counter() - began)
                print(
                    f"{len(loaded):>8} {rate:>13.0f} {percentile(gets, 50) * 1000:>11.2f} "
                    f"{percentile(ranges, 50) * 1000:>13.2f}",
                    flush=True,
                )
            store.close()


if __name__ == "__main__":
    main()
