"""Part 7: provisioning events (issue 13): what the outbox adds to a write, what a poll costs,
how fast push drains, and whether a poll's cost grows with the backlog.

In process over Azurite (as parts 2, 3 and 6), each customer its own tables; storage requests
counted at the Table client's transport (``TableStore.request_count``):

- ``writes``: storage requests of each kind of write through ``ScimService.handle`` with events
  off and with ``SCIM_EVENTS=notice``: the event row rides in the change's own entity-group
  transaction, so the two must be equal.
- ``poll``: the steady state of an app draining a backlog through ``POST /Events``
  (``EventsEndpoint``, ES256-signed SETs): each poll acknowledges the previous 100 and takes
  the next 100. p50/p99 ms per poll, ms per event, storage requests per poll.
- ``push``: ``Pusher.run`` to a loopback RFC 8935 receiver (http.server, HTTP/1.1 keep-alive,
  answering 202): SETs/s, signed (ES256) and unsigned.
- ``growth``: a poll of 100 (no ack: it reads the same head each time) with 1k and with 100k
  events pending, interleaved, p50 of ``samples`` each; the ratio is the target (<= 1.2). The
  backlog is seeded with the outbox's own write path (``Store.outbox_put``: rows with their
  keys given, 100 an entity-group transaction, 8 writers), not through SCIM writes: 100k
  changes through the service would take most of an hour on Azurite and measure the writes,
  not the poll.

Run alone: ``python -m bench.events [--quick]`` (prints the figures; writes nothing).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.client import service_request
from bench.entra_cycle import entra_user, patch
from bench.servers import BenchAzurite
from bench.stats import median, percentile
from scim_core.events.feed import EventFeed
from scim_core.events.poll import EventsEndpoint
from scim_core.events.push import PushConfig, Pusher
from scim_core.events.record import EVENTS, EventProducer
from scim_core.events.tokens import SetEncoder, new_signing_key
from scim_core.service import ScimService
from scim_core.store import Outbox
from scim_core.store.protocol import stamp
from scim_core.store.table import TableStore

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PAGE = 100


def signing_pem() -> str:
    return new_signing_key()


def encoder(signed: bool = True) -> SetEncoder:
    if signed:
        return SetEncoder(issuer="https://scim.bench/scim/v2", signing_key=signing_pem())
    return SetEncoder(issuer="https://scim.bench/scim/v2", unsigned=True)


def table_store(azurite: BenchAzurite, prefix: str) -> TableStore:
    store = TableStore.from_connection_string(azurite.connection_string, table_prefix=prefix)
    store.create_tables()
    return store


# --- 1. storage requests per write ------------------------------------------------------------


def write_requests(azurite: BenchAzurite, repeats: int) -> dict[str, Any]:
    """Storage requests of each kind of write, events off and on (same operations)."""
    sides: dict[str, dict[str, list[int]]] = {}
    for side, producers in (("off", []), ("on", [EventProducer("notice")])):
        store = table_store(azurite, f"ew{side}{secrets.token_hex(3)}")
        sides[side] = _count_writes(store, ScimService(store, producers=producers), repeats)
        if side == "on":
            pending, _ = EventFeed(store).pending(999)
            assert len(pending) == 8 * repeats, len(pending)  # one event per write
    return {
        name: {"off": median(sides["off"][name]), "on": median(sides["on"][name])}
        for name in sides["off"]
    }


def _count_writes(store: TableStore, service: ScimService, repeats: int) -> dict[str, list[int]]:
    counts: dict[str, list[int]] = {}

    def count(name: str, method: str, path: str, body: Any = None) -> Any:
        before = store.request_count
        resp = service.handle(service_request(method, path, None, body))
        assert resp.status < 300, (name, resp.status, resp.body[:300])
        counts.setdefault(name, []).append(store.request_count - before)
        return json.loads(resp.body) if resp.body else None

    for n in range(repeats):
        user = count("create user", "POST", "/Users", entra_user(f"w{n}@contoso.com", f"x{n}"))
        uid = user["id"]
        rename = {"op": "replace", "path": "displayName", "value": f"User {n}"}
        count("patch user", "PATCH", f"/Users/{uid}", patch(rename))
        off = {"op": "replace", "path": "active", "value": False}
        count("deactivate user", "PATCH", f"/Users/{uid}", patch(off))
        body = {**entra_user(f"w{n}@contoso.com", f"x{n}"), "displayName": "Put"}
        count("put user", "PUT", f"/Users/{uid}", body)
        group = {"schemas": [GROUP], "displayName": f"g{n}"}
        gid = count("create group", "POST", "/Groups", group)["id"]
        add = {"op": "add", "path": "members", "value": [{"value": uid}]}
        count("add member", "PATCH", f"/Groups/{gid}", patch(add))
        count("delete user", "DELETE", f"/Users/{uid}")
        count("delete group", "DELETE", f"/Groups/{gid}")
    return counts


# --- seeding ----------------------------------------------------------------------------------


def seed(store: TableStore, count: int, start: datetime, workers: int = 8) -> float:
    """``count`` pending user events with keys from ``start`` on (1 ms apart), written with the
    outbox's own path, 1,000 a task. Returns events/s."""
    body = {
        "type": "User",
        "id": "",
        "events": {"urn:ietf:params:scim:event:prov:patch:notice": {"attributes": ["title"]}},
        "origin": "enrichment",
        "txn": "",
    }

    def rows(first: int, last: int) -> list[Outbox]:
        out = []
        for n in range(first, last):
            key = f"{stamp(start + timedelta(milliseconds=n))}|{n:012x}"
            out.append(Outbox(EVENTS, key, {**body, "id": str(uuid.UUID(int=n)), "txn": f"t{n}"}))
        return out

    began = time.perf_counter()
    chunks = [(n, min(n + 1000, count)) for n in range(0, count, 1000)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda c: store.outbox_put("User", rows(*c)), chunks))
    return count / (time.perf_counter() - began)


def poll(endpoint: EventsEndpoint, body: dict[str, Any]) -> dict[str, Any]:
    resp = endpoint.handle(service_request("POST", "/Events", None, body))
    assert resp.status == 200, resp.body[:300]
    value: dict[str, Any] = json.loads(resp.body)
    return value


# --- 2. poll cost per event -------------------------------------------------------------------


def poll_cost(azurite: BenchAzurite, polls: int) -> dict[str, Any]:
    store = table_store(azurite, f"ep{secrets.token_hex(3)}")
    seed(store, PAGE * (polls + 1), datetime.now(UTC) - timedelta(hours=1))
    endpoint = EventsEndpoint(EventFeed(store), encoder())
    acks: list[str] = []
    ms: list[float] = []
    requests: list[int] = []
    for _ in range(polls):
        before = store.request_count
        began = time.perf_counter()
        answer = poll(endpoint, {"ack": acks, "maxEvents": PAGE, "returnImmediately": True})
        ms.append((time.perf_counter() - began) * 1000)
        requests.append(store.request_count - before)
        assert len(answer["sets"]) == PAGE
        acks = list(answer["sets"])
    return {
        "polls": polls,
        "events_per_poll": PAGE,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "ms_per_event_p50": percentile(ms, 50) / PAGE,
        "storage_requests_per_poll": median(requests),
    }


# --- 3. push throughput -----------------------------------------------------------------------


@contextmanager
def receiver() -> Iterator[tuple[str, list[int]]]:
    """A loopback RFC 8935 receiver answering 202; yields its URL and a one-item hit counter."""
    hits = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                hits[0] += 1
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/events", hits
    finally:
        server.shutdown()
        server.server_close()


def push_throughput(azurite: BenchAzurite, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {"sets": count}
    for label, signed in (("signed_es256", True), ("unsigned", False)):
        store = table_store(azurite, f"eu{secrets.token_hex(3)}")
        seed(store, count, datetime.now(UTC) - timedelta(minutes=30))
        feed = EventFeed(store)
        with receiver() as (url, hits):
            pusher = Pusher(feed, encoder(signed), PushConfig(url), max_sets=count, run_seconds=600)
            before = store.request_count
            began = time.perf_counter()
            run = pusher.run()
            seconds = time.perf_counter() - began
        assert run.pushed == count == hits[0], (run, hits)
        out[label] = {
            "sets_per_s": count / seconds,
            "storage_requests_per_set": (store.request_count - before) / count,
        }
    return out


# --- 4. poll cost with the backlog ------------------------------------------------------------


def backlog_growth(
    azurite: BenchAzurite, sizes: list[int], samples: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    endpoints: dict[int, tuple[TableStore, EventsEndpoint]] = {}
    sign = encoder()
    for size in sizes:
        store = table_store(azurite, f"eg{size}{secrets.token_hex(2)}")
        rate = seed(store, size, datetime.now(UTC) - timedelta(days=1))
        log(f"  seeded {size} pending events at {rate:.0f}/s")
        endpoints[size] = (store, EventsEndpoint(EventFeed(store), sign))
    per_size: dict[int, list[float]] = {size: [] for size in sizes}
    requests: dict[int, list[int]] = {size: [] for size in sizes}
    for _ in range(repeats):
        ms: dict[int, list[float]] = {size: [] for size in sizes}
        for sample in range(samples):
            # Poll by poll, alternating which size goes first: drift and load land on both.
            for size in sizes if sample % 2 == 0 else sizes[::-1]:
                store, endpoint = endpoints[size]
                before = store.request_count
                began = time.perf_counter()
                answer = poll(endpoint, {"maxEvents": PAGE, "returnImmediately": True})
                ms[size].append((time.perf_counter() - began) * 1000)
                requests[size].append(store.request_count - before)
                assert len(answer["sets"]) == PAGE and answer["moreAvailable"]
        for size in sizes:
            per_size[size].append(percentile(ms[size], 50))
    result: dict[str, Any] = {
        str(size): {
            "p50_ms": median(per_size[size]),
            "storage_requests_per_poll": median(requests[size]),
        }
        for size in sizes
    }
    result["ratio"] = median(per_size[sizes[-1]]) / median(per_size[sizes[0]])
    return result


def run(work: Path, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    sizes = [1_000, 10_000] if quick else [1_000, 100_000]
    with BenchAzurite(work / "azurite-events") as azurite:
        log("  storage requests per write, events off and on")
        out: dict[str, Any] = {"writes": write_requests(azurite, 3)}
        log("  poll cost per event")
        out["poll"] = poll_cost(azurite, 20 if quick else 50)
        log("  push throughput")
        out["push"] = push_throughput(azurite, 300 if quick else 2000)
        log(f"  poll cost with {sizes[0]} and {sizes[-1]} events pending")
        out["growth"] = backlog_growth(
            azurite, sizes, samples=20 if quick else 30, repeats=3, log=log
        )
    return out


def markdown(r: dict[str, Any]) -> list[str]:
    lines = [
        "## 7. Provisioning events",
        "",
        "| write | storage requests, events off | events on |",
        "|---|---:|---:|",
    ]
    for name, v in r["writes"].items():
        lines.append(f"| {name} | {v['off']:.0f} | {v['on']:.0f} |")
    p = r["poll"]
    lines += [
        "",
        f"Poll of {p['events_per_poll']} (acking the previous {p['events_per_poll']}, ES256): "
        f"p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, {p['ms_per_event_p50']:.2f} ms "
        f"per event, {p['storage_requests_per_poll']:.0f} storage requests per poll.",
        "",
    ]
    u = r["push"]
    lines.append(
        f"Push of {u['sets']} SETs to a loopback receiver: "
        f"{u['signed_es256']['sets_per_s']:.0f} SETs/s signed (ES256), "
        f"{u['unsigned']['sets_per_s']:.0f} SETs/s unsigned; "
        f"{u['signed_es256']['storage_requests_per_set']:.3f} storage requests per SET."
    )
    g = r["growth"]
    sizes = [k for k in g if k != "ratio"]
    cells = ", ".join(
        f"{int(s):,} pending: p50 {g[s]['p50_ms']:.1f} ms "
        f"({g[s]['storage_requests_per_poll']:.0f} requests)"
        for s in sizes
    )
    lines += [
        "",
        f"Poll of 100 with the backlog: {cells}; ratio {g['ratio']:.2f} (target <= 1.2).",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.events", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="10k instead of 100k pending events")
    args = parser.parse_args(argv)
    import tempfile

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scim-bench-events-") as tmp:
        result = run(Path(tmp), quick=args.quick, log=log)
    print("\n".join(markdown(result)))
    log(f"took {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
