"""Where a request's time goes at 1k and at 100k users: our process or Azurite (not in
``make bench``; bench/README.md "Why p50s grew while requests stayed flat").

    python -m bench.growth_probe                      # 1k and 100k users, 100 rounds (~8 min)
    python -m bench.growth_probe --levels 1000,10000 --rounds 50

Customers as in part 6 (every index key), in one Azurite with the index shim and
``azurite_timing.js``. Each round makes one call of each operation at each size, the sizes
alternating in order, so that both sizes see the same machine. Per call: wall time at the
service, our thread's CPU time, the wall time of each storage request at our transport; per
storage request, Azurite's server time, its time in the Table store's query methods and in
LokiJS ``findOne``, and the rows its predicates ran over. Medians per operation and size.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.app_side import AppCustomer
from bench.scale import Reply
from bench.servers import BenchAzurite
from bench.stats import median
from scim_core.store import transport

TIMING = Path(__file__).resolve().with_name("azurite_timing.js")


class TimedAzurite(BenchAzurite):
    """The benchmark's Azurite (in memory, index shim) with ``azurite_timing.js`` preloaded."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.out = location / "timing.jsonl"

    def _node_env(self) -> dict[str, str]:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        env = super()._node_env()
        env["NODE_OPTIONS"] += f" --require={TIMING}"
        env["AZURITE_TIMING_OUT"] = str(self.out)
        return env

    def records(self) -> list[dict[str, Any]]:
        """Azurite's records since the last call (it writes them on SIGUSR2)."""
        self.out.unlink(missing_ok=True)
        assert self.pid is not None
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not (self.out.exists() and self.out.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the write is synchronous, but may have just begun
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


#: Wall time of each storage request at our transport, in the order sent.
_request_seconds: list[float] = []


def _time_transport() -> None:
    send = transport.HttpClientTransport.send

    def timed(self: Any, request: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return send(self, request, **kwargs)
        finally:
            _request_seconds.append(time.perf_counter() - began)

    transport.HttpClientTransport.send = timed  # type: ignore[method-assign]


def operations(c: AppCustomer) -> dict[str, Callable[[], Reply]]:
    app = c.operations()

    def user() -> str:
        return c.users[c.rng.randrange(len(c.users))]

    def username() -> dict[str, str]:
        return {"filter": f'userName eq "app{c.rng.randrange(len(c.users))}@contoso.com"'}

    return {
        "get_user": lambda: c.call("GET", f"/Users/{user()}"),
        "username_eq": lambda: c.call("GET", "/Users", username()),
        "emails_eq": lambda: app["emails_eq"][0](0),
        "poll_10": lambda: app["poll_10"][0](0),
    }


def run(levels: list[int], rounds: int) -> dict[str, Any]:
    _time_transport()
    calls: list[tuple[str, int, dict[str, Any]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="growth-probe-") as tmp,
        TimedAzurite(Path(tmp) / "azurite") as azurite,
    ):
        customers = {level: AppCustomer(azurite, f"g{level}") for level in levels}
        for level, customer in customers.items():
            rate = customer.load_users(level)
            customer.prepare()
            print(f"  {level:,} users loaded ({rate:,.0f}/s)", file=sys.stderr, flush=True)
        ops = {level: operations(c) for level, c in customers.items()}
        for per_level in ops.values():  # warm-up
            for call in per_level.values():
                call()
        azurite.records()
        for k in range(rounds):
            for name in ops[levels[0]]:
                for level in levels if k % 2 == 0 else levels[::-1]:
                    first, cpu = len(_request_seconds), time.thread_time()
                    reply = ops[level][name]()
                    cpu = time.thread_time() - cpu
                    assert reply.status == 200, reply.body[:300]
                    sample: dict[str, Any] = {"wall": reply.seconds, "cpu": cpu}
                    sample["requests"] = _request_seconds[first:]
                    calls.append((name, level, sample))
        served = azurite.records()
        for customer in customers.values():
            customer.store.close()
    at = 0
    for _, _, sample in calls:
        n = len(sample["requests"])
        sample["served"], at = served[at : at + n], at + n
    if at != len(served):
        raise RuntimeError(f"{len(served)} requests served, {at} sent: records do not match")
    return summary(calls)


def summary(calls: list[tuple[str, int, dict[str, Any]]]) -> dict[str, Any]:
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for name, level, sample in calls:
        grouped.setdefault((name, level), []).append(sample)

    def ms(values: Any) -> float:
        return round(median(values) * 1000, 3)

    def served(samples: list[dict[str, Any]], key: str) -> float:
        return round(median(sum(r[key] for r in s["served"]) for s in samples), 3)

    return {
        f"{name}@{level}": {
            "wall_ms": ms(s["wall"] for s in samples),
            "our_cpu_ms": ms(s["cpu"] for s in samples),
            "storage_requests": median(len(s["requests"]) for s in samples),
            "storage_wall_ms": ms(sum(s["requests"]) for s in samples),
            "azurite_server_ms": served(samples, "server_ms"),
            "azurite_store_ms": served(samples, "store_ms"),
            "azurite_find_one_ms": served(samples, "find_one_ms"),
            "azurite_rows_visited": served(samples, "rows"),
        }
        for (name, level), samples in sorted(grouped.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth_probe", description=__doc__)
    parser.add_argument("--levels", default="1000,100000", help="customer sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=100, help="calls of each operation per size")
    args = parser.parse_args(argv)
    levels = [int(v) for v in args.levels.split(",")]
    result = run(levels, args.rounds)
    columns = list(next(iter(result.values())))
    print("| operation@users | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for key, row in result.items():
        print(f"| {key} | " + " | ".join(str(row[c]) for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
