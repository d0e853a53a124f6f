"""Part 6: the app side at scale (issue 12): what a line-of-business app's requests cost.

Customers of 1k and 10k users (and 100k in a full run) side by side in one Azurite, each served
by its own ``ScimService`` over a ``TableStore`` in process, as in part 3. Every user has its
own email and enterprise ``employeeNumber`` and is written with every index key the service
writes (operator-chosen indexes, change index), through the store's batch path. Per size, the
operations interleaved repeat after repeat, p50 and p99 of ``samples`` calls and the storage
requests of each (counted at the Table client's transport):

- ``cursor_page``: a page of 100 taken from the middle of an RFC 9865 cursor walk;
- ``emails_eq`` / ``employee_eq``: ``emails.value eq`` / ``employeeNumber eq`` of a random user;
- ``poll_10``: ``meta.lastModified gt T`` where 10 users changed after T;
- ``deep_start_index``: ``startIndex = n - 100`` (reported beside: Table Storage has no offset,
  so the page steps over the rows before it key-only, 1,000 a request: its cost grows with n).

Then a full cursor export of the largest customer (1,000 a page): total time and requests.
"""

from __future__ import annotations

import itertools
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.entra_cycle import entra_user, patch
from bench.scale import Customer, Reply
from bench.servers import BenchAzurite
from bench.stats import median, percentile, rotated
from scim_core.cursor import Position, query_digest
from scim_core.indexes import mark_built
from scim_core.query import plan
from scim_core.schema import ENTERPRISE_USER_SCHEMA
from scim_core.service import ScimService

OPS = ("cursor_page", "emails_eq", "employee_eq", "poll_10", "deep_start_index")
PAGE = 100


class AppCustomer(Customer):
    """A customer whose users carry every index key and unique emails / employee numbers."""

    def __init__(self, azurite: BenchAzurite, prefix: str) -> None:
        super().__init__(azurite, prefix)
        self.scim = ScimService(self.store)
        self.service = self.scim  # no Router: auth is not what is measured
        self.poll_since = ""
        self.mid_cursor = ""

    def load_users(self, count: int) -> float:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        rtype = self.scim.types["User"]

        def items() -> Iterator[tuple[dict[str, Any], dict[str, str | None]]]:
            for n, uid in enumerate(ids):
                body = entra_user(f"app{n}@contoso.com", f"appext{n}")
                doc = {k: v for k, v in body.items() if k not in ("schemas", "roles", "addresses")}
                doc[ENTERPRISE_USER_SCHEMA] = {"employeeNumber": f"E{n:07}"}
                doc["id"] = uid
                doc["meta"] = {
                    "resourceType": "User",
                    "created": "2026-01-01T00:00:00.000Z",
                    "lastModified": "2026-01-01T00:00:00.000Z",
                }
                yield doc, self.scim.keys(rtype, doc)

        began = time.perf_counter()
        self.store.bulk_load("User", items(), workers=8)
        seconds = time.perf_counter() - began
        self.users += ids
        # Every user was written with every index key: the indexes are built.
        mark_built(self.store, self.scim.readiness.names)
        return count / seconds

    def prepare(self) -> None:
        """The poll's 10 changes, and a cursor in the middle of a walk."""
        self.poll_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        for n in range(10):
            body = patch({"op": "Replace", "path": "title", "value": f"t{secrets.token_hex(3)}"})
            reply = self.call("PATCH", f"/Users/{self.users[n]}", body=body)
            assert reply.status == 200, reply.body
        # A cursor for the page after the middle user, as the walk would have issued it.
        middle = next(itertools.islice(self.store.positions("User"), len(self.users) // 2, None))
        chosen = plan(self.scim.types["User"], None)
        digest = query_digest("User", None, None, None, chosen.name)
        codec = self.scim._cursor_codec()
        self.mid_cursor = codec.issue(digest, Position(middle, len(self.users) // 2))

    def operations(self) -> dict[str, tuple[Callable[[int], Reply], Callable[[Reply], bool]]]:
        n = len(self.users)

        def pick() -> int:
            return self.rng.randrange(n)

        def found(r: Reply) -> bool:
            return r.status == 200 and r.json()["totalResults"] == 1

        poll = {"filter": f'meta.lastModified gt "{self.poll_since}"'}
        return {
            "cursor_page": (
                lambda k: self.call(
                    "GET", "/Users", {"cursor": self.mid_cursor, "count": str(PAGE)}
                ),
                lambda r: r.status == 200 and len(r.json()["Resources"]) == PAGE,
            ),
            "emails_eq": (
                lambda k: self.call(
                    "GET", "/Users", {"filter": f'emails.value eq "APP{pick()}@contoso.com"'}
                ),
                found,
            ),
            "employee_eq": (
                lambda k: self.call(
                    "GET", "/Users", {"filter": f'employeeNumber eq "E{pick():07}"'}
                ),
                found,
            ),
            "poll_10": (
                lambda k: self.call("GET", "/Users", poll),
                lambda r: r.status == 200 and len(r.json()["Resources"]) == 10,
            ),
            "deep_start_index": (
                lambda k: self.call(
                    "GET", "/Users", {"startIndex": str(n - PAGE + 1), "count": str(PAGE)}
                ),
                lambda r: r.status == 200 and len(r.json()["Resources"]) == PAGE,
            ),
        }

    def export(self) -> dict[str, Any]:
        """A full cursor export, 1,000 a page: time, requests, resources."""
        before, began = self.store.request_count, time.perf_counter()
        seen, pages, query = 0, 0, {"cursor": "", "count": "1000"}
        while True:
            reply = self.call("GET", "/Users", query)
            assert reply.status == 200, reply.body[:300]
            body = reply.json()
            seen, pages = seen + len(body["Resources"]), pages + 1
            if "nextCursor" not in body:
                break
            query["cursor"] = body["nextCursor"]
        return {
            "users": seen,
            "pages": pages,
            "seconds": round(time.perf_counter() - began, 2),
            "storage_requests": self.store.request_count - before,
        }


def run(
    work: Any,
    *,
    levels: list[int],
    samples: int,
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    result: dict[str, Any] = {"levels": {}, "loading": {}}
    with BenchAzurite(work / "azurite-app") as azurite:
        customers = {level: AppCustomer(azurite, f"a{level}") for level in levels}
        for level, customer in customers.items():
            rate = customer.load_users(level)
            customer.prepare()
            result["loading"][f"users_{level}_per_s"] = round(rate, 1)
            log(f"  app customer of {level:,} users loaded ({rate:,.0f}/s)")
        for customer in customers.values():  # warm-up: readiness reads, lazy imports
            for action, _ in customer.operations().values():
                action(0)
        raw: dict[int, dict[str, dict[str, list[float]]]] = {
            level: {op: {"seconds": [], "requests": [], "failures": []} for op in OPS}
            for level in levels
        }
        # The sizes interleaved call by call, in an order rotated call after call (see
        # bench.scale.interleaved: blocks of calls per size let a slow spell land on one size).
        for repeat in range(repeats):
            for op in OPS:
                actions = {level: customers[level].operations()[op] for level in levels}
                for k in range(samples):
                    for level in rotated(levels, k + repeat):
                        customer = customers[level]
                        action, ok = actions[level]
                        before = customer.store.request_count
                        reply = action(k)
                        raw[level][op]["requests"].append(customer.store.request_count - before)
                        raw[level][op]["seconds"].append(reply.seconds)
                        raw[level][op]["failures"].append(0.0 if ok(reply) else 1.0)
        for level in levels:
            result["levels"][str(level)] = {
                op: {
                    "p50_ms": round(percentile(r["seconds"], 50) * 1000, 3),
                    "p99_ms": round(percentile(r["seconds"], 99) * 1000, 3),
                    "p50_ms_repeats": [
                        round(percentile(r["seconds"][i : i + samples], 50) * 1000, 3)
                        for i in range(0, len(r["seconds"]), samples)
                    ],
                    "storage_requests": int(median(r["requests"])),
                    "failures": int(sum(r["failures"])),
                }
                for op, r in raw[level].items()
            }
        largest = customers[levels[-1]]
        log(f"  full cursor export of {levels[-1]:,} users")
        result["export"] = largest.export()
        for customer in customers.values():
            customer.store.close()
    return result


__all__ = ["OPS", "run"]
