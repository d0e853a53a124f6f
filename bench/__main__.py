"""``python -m bench`` (``make bench``): run every part, write ``bench/results/<date>.json`` and
``bench/results/<date>.md`` (the summary), print the summary.

    python -m bench            # the full run: 100k users, 100k-member groups (< 10 min, 2 cores)
    python -m bench --quick    # a smoke run at small sizes (~2 min)
    python -m bench --parts cycle,cpu   # some parts only: cycle, cold, cpu, scale, app, events,
                                        # writeback
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    app_side,
    cold_start,
    entra_cycle,
    events,
    protocol_cpu,
    report,
    scale,
    writeback,
)
from bench.client import cpu_seconds
from bench.servers import ROOT, BenchAzurite, OurHost, PeerServer
from bench.stats import median

RESULTS = Path(__file__).resolve().with_name("results")
PARTS = ("cycle", "cold", "cpu", "scale", "app", "events", "writeback")

FULL = {
    "cycle_users": 200,
    "cycle_repeats": 3,
    "cold_repeats": 15,  # the cheapest part, and the noisiest: interpreter starts vary by ~10%
    "cpu_loops": 300,
    "cpu_repeats": 5,
    "levels": scale.USER_LEVELS,
    "group_sizes": scale.GROUP_SIZES,
    "samples": 40,
    "scale_repeats": 3,
    "app_levels": [1_000, 10_000, 100_000],
    "writeback_users": 10_000,
}
QUICK = {
    "cycle_users": 40,
    "cycle_repeats": 2,
    "cold_repeats": 3,
    "cpu_loops": 100,
    "cpu_repeats": 3,
    "levels": [1_000, 5_000],
    "group_sizes": [10, 2_000],
    "samples": 15,
    "scale_repeats": 2,
    "app_levels": [1_000, 10_000],
    "writeback_users": 1_000,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    azurite = json.loads((ROOT / "node_modules/azurite/package.json").read_text())["version"]
    from importlib.metadata import version

    import scim2_server  # noqa: F401  (version below)

    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": _cores(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": node,
        "azurite": azurite,
        "scim2_server": version("scim2-server"),
        "azure_data_tables": version("azure-data-tables"),
        "load_average_at_start": load,
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def run_cycle(work: Path, cfg: dict[str, Any], out: dict[str, Any]) -> None:
    token = secrets.token_urlsafe(24)
    with BenchAzurite(work / "azurite-cycle") as azurite:
        with (
            OurHost(azurite.connection_string, token, work / "devhost") as ours,
            PeerServer(token) as peer,
            PeerServer(token, tuned=True) as tuned,
        ):
            servers = {"ours": ours, "peer": peer, "peer_tuned": tuned}
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for name, server in servers.items():  # warm-up: first requests, lazy imports
                entra_cycle.run_cycle(server.base_url, token, 10, peer=name != "ours")
            for repeat in range(cfg["cycle_repeats"]):
                for name, server in servers.items():  # interleaved
                    before = cpu_seconds(server.pid), cpu_seconds(azurite.pid)
                    result = entra_cycle.run_cycle(
                        server.base_url, token, cfg["cycle_users"], peer=name != "ours"
                    )
                    spent = cpu_seconds(server.pid) - before[0]
                    result["server_cpu_ms_per_op"] = round(1000 * spent / result["ops"], 3)
                    if name == "ours":
                        storage = cpu_seconds(azurite.pid) - before[1]
                        result["azurite_cpu_ms_per_op"] = round(1000 * storage / result["ops"], 3)
                    runs[name].append(result)
                    log(
                        f"  cycle {repeat + 1}/{cfg['cycle_repeats']} {name}: "
                        f"{result['ops_per_s']} ops/s, errors {result['errors']}, "
                        f"verification problems {result['verification_problem_count']}"
                    )
        out["cycle"] = {
            "users_per_cycle": cfg["cycle_users"],
            "repeats": cfg["cycle_repeats"],
            "concurrency": entra_cycle.CONCURRENCY,
            "servers": {name: aggregate_cycle(items) for name, items in runs.items()},
        }
        servers_out = out["cycle"]["servers"]
        out["cycle"]["ratio_vs_peer"] = round(
            servers_out["ours"]["ops_per_s"] / servers_out["peer"]["ops_per_s"], 3
        )
        out["cycle"]["ratio_vs_peer_tuned"] = round(
            servers_out["ours"]["ops_per_s"] / servers_out["peer_tuned"]["ops_per_s"], 3
        )


def aggregate_cycle(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats; errors and verification problems summed."""
    errors: dict[str, int] = {}
    for item in items:
        for status, n in item["errors"].items():
            errors[status] = errors.get(status, 0) + n
    phases = {}
    for phase in entra_cycle.PHASES:
        rows = [item["phases"][phase] for item in items]
        phase_errors: dict[str, int] = {}
        for row in rows:
            for status, n in row["errors"].items():
                phase_errors[status] = phase_errors.get(status, 0) + n
        phases[phase] = {
            "ops": rows[0]["ops"],
            **{
                k: round(median(r[k] for r in rows), 3)
                for k in ("ops_per_s", "p50_ms", "p95_ms", "p99_ms")
            },
            "errors": phase_errors,
        }
    out = {
        "ops_per_cycle": items[0]["ops"],
        "ops_per_s": round(median(i["ops_per_s"] for i in items), 1),
        "ops_per_s_repeats": [i["ops_per_s"] for i in items],
        "server_cpu_ms_per_op": round(median(i["server_cpu_ms_per_op"] for i in items), 3),
        "errors": errors,
        "verification_problems": sum(i["verification_problem_count"] for i in items),
        "verification_examples": items[-1]["verification_problems"][:5],
        "peer_adaptations_per_cycle": items[-1]["peer_adaptations"],
        "phases": phases,
    }
    if "azurite_cpu_ms_per_op" in items[0]:
        out["azurite_cpu_ms_per_op"] = round(median(i["azurite_cpu_ms_per_op"] for i in items), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    cfg = QUICK if args.quick else FULL
    began = time.perf_counter()
    stamp = datetime.now(UTC)
    out: dict[str, Any] = {
        "meta": {
            "date": stamp.isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "command": "python -m bench " + " ".join(argv or sys.argv[1:]),
            "config": cfg,
            "machine": machine(),
        },
    }
    # Our own modules compiled once, like site-packages (pip compiles at install): the cold
    # start then compares bytecode with bytecode (PYTHONDONTWRITEBYTECODE would otherwise
    # recompile scim_core in every fresh process).
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "scim_core",
            "function_app.py",
            "devhost",
            "bench",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
    )
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as tmp:
        work = Path(tmp)
        if "cycle" in parts:
            log("part 1: Entra cycle over HTTP (ours on Azurite vs scim2-server)")
            run_cycle(work, cfg, out)
        if "cold" in parts:
            log("part 5: cold start")
            with BenchAzurite(work / "azurite-cold") as azurite:
                out["cold_start"] = cold_start.run(
                    azurite.connection_string, repeats=cfg["cold_repeats"]
                )
        if "cpu" in parts:
            log("part 4: protocol CPU per operation (in process, in-memory stores)")
            out["protocol_cpu"] = protocol_cpu.run(
                loops=cfg["cpu_loops"], repeats=cfg["cpu_repeats"]
            )
        if "scale" in parts:
            log("parts 2 and 3: storage requests per operation, cost growth")
            out["scale"] = scale.run(
                work,
                levels=cfg["levels"],
                group_sizes=cfg["group_sizes"],
                samples=cfg["samples"],
                repeats=cfg["scale_repeats"],
                log=log,
            )
        if "app" in parts:
            log("part 6: the app side (cursor pages, indexed lookups, change poll, export)")
            out["app"] = app_side.run(
                work,
                levels=cfg["app_levels"],
                samples=cfg["samples"],
                repeats=cfg["scale_repeats"],
                log=log,
            )
        if "writeback" in parts:
            log("part 8: Graph write-back and newcomer enrichment (issue 14)")
            out["writeback"] = writeback.run(work, users=cfg["writeback_users"], log=log)
        if "events" in parts:
            log("part 7: provisioning events (writes, poll, push, backlog growth)")
            out["events"] = events.run(work, quick=args.quick, log=log)
    out["meta"]["duration_s"] = round(time.perf_counter() - began, 1)
    out["targets"] = report.targets(out)
    args.out.mkdir(parents=True, exist_ok=True)
    name = stamp.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    (args.out / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    summary = report.markdown(out)
    (args.out / f"{name}.md").write_text(summary)
    print(summary)
    log(f"wrote {args.out / (name + '.json')} and .md in {out['meta']['duration_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
