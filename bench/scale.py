"""Parts 2 and 3: storage requests per operation, and cost growth with the customer's size.

Three customers of 1k, 10k and 100k users live side by side in one Azurite (each its own
tables, ``table_prefix``), each served by its own ``ScimService`` over a ``TableStore``, called in
process (``service.handle``: the SCIM service and its storage; the HTTP host adds a constant,
so leaving it out makes the ratios stricter). Measuring the three sizes interleaved call by
call keeps drift in a shared 2-core machine out of the ratios. Storage requests are
counted at the Table client's transport (``TableStore.request_count``) on the same requests.

Users are loaded with the store's batch path (``TableStore.bulk_load``: many users per
entity-group transaction, several in flight), members with the store's write path
(``replace`` with a member change: 33 memberships per transaction); never 100k HTTP calls.
The groups of 10, 10k and 100k members belong to the 100k customer, their members are its users.
"""

from __future__ import annotations

import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.client import service_request
from bench.entra_cycle import ENT, GROUP, MS_GROUP, entra_user, patch
from bench.servers import BenchAzurite
from bench.stats import median, percentile, rotated
from scim_core.http import ScimResponse
from scim_core.router import Router
from scim_core.service import ScimService
from scim_core.store import INLINE_MEMBERS, Member, MemberChange
from scim_core.store.table import TableStore

USER_LEVELS = [1_000, 10_000, 100_000]
GROUP_SIZES = [10, 10_000, 100_000]
MEMBER_CHUNK = 5_000  # memberships per store write while loading


class Reply:
    def __init__(self, resp: ScimResponse, seconds: float) -> None:
        self.status, self.body, self.seconds = resp.status, resp.body, seconds

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Customer:
    """One customer: its tables, its store and service, its users."""

    def __init__(self, azurite: BenchAzurite, prefix: str) -> None:
        self.store = TableStore.from_connection_string(
            azurite.connection_string, table_prefix=prefix
        )
        self.store.create_tables()
        self.service = Router(ScimService(self.store), None)
        self.users: list[str] = []
        self.rng = random.Random(prefix)

    def call(
        self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None
    ) -> Reply:
        req = service_request(method, path, query, body)
        began = time.perf_counter()
        resp = self.service.handle(req)
        return Reply(resp, time.perf_counter() - began)

    def load_users(self, count: int) -> float:
        """Bulk-load ``count`` users; returns users/s."""
        ids = [str(uuid.uuid4()) for _ in range(count)]

        def items() -> Iterator[tuple[dict[str, Any], dict[str, str | None]]]:
            for n, uid in enumerate(ids):
                body = entra_user(f"load{n}@contoso.com", f"loadext{n}")
                doc = {
                    k: v
                    for k, v in body.items()
                    if k not in ("schemas", "meta", "roles", "addresses")
                }
                doc["id"] = uid
                doc["meta"] = {
                    "resourceType": "User",
                    "created": "2026-01-01T00:00:00.000Z",
                    "lastModified": "2026-01-01T00:00:00.000Z",
                }
                keys = {"userName": doc["userName"].casefold(), "externalId": doc["externalId"]}
                yield doc, keys

        began = time.perf_counter()
        self.store.bulk_load("User", items(), workers=8)
        seconds = time.perf_counter() - began
        self.users += ids
        return count / seconds

    def new_group(self, name: str) -> str:
        reply = self.call(
            "POST", "/Groups", body={"schemas": [GROUP, MS_GROUP], "displayName": name}
        )
        assert reply.status == 201, reply.body
        return str(reply.json()["id"])

    def load_members(self, group_id: str, member_ids: list[str]) -> float:
        """Add memberships through the store's write path; returns memberships/s."""
        began = time.perf_counter()
        for start in range(0, len(member_ids), MEMBER_CHUNK):
            chunk = [Member(uid) for uid in member_ids[start : start + MEMBER_CHUNK]]
            current = self.store.get("Group", group_id)
            self.store.replace(
                "Group", current.doc, current.keys, current.etag, MemberChange(add=chunk)
            )
        return len(member_ids) / (time.perf_counter() - began)

    def new_user(self, tag: str) -> str:
        reply = self.call(
            "POST",
            "/Users",
            body=entra_user(f"{tag}-{secrets.token_hex(5)}@x.com", f"{tag}-{secrets.token_hex(5)}"),
        )
        assert reply.status == 201, reply.body
        return str(reply.json()["id"])

    def sample(
        self, action: Callable[[int], Reply], ok: Callable[[Reply], bool], k: int
    ) -> tuple[float, int, bool]:
        """One call: (seconds, storage requests, failed)."""
        before = self.store.request_count
        reply = action(k)
        return reply.seconds, self.store.request_count - before, not ok(reply)


def _found(reply: Reply) -> bool:
    return reply.status == 200 and reply.json()["totalResults"] == 1


def user_operations(
    c: Customer, check_group: str, check_members: list[str]
) -> dict[str, tuple[Callable[[int], Reply], Callable[[Reply], bool]]]:
    def pick() -> int:
        return c.rng.randrange(len(c.users))

    def check(k: int) -> Reply:
        flt = f'id eq "{check_group}" and members eq "{check_members[k % len(check_members)]}"'
        return c.call("GET", "/Groups", {"filter": flt, "excludedAttributes": "members"})

    return {
        "get_user": (
            lambda k: c.call("GET", f"/Users/{c.users[pick()]}"),
            lambda r: r.status == 200,
        ),
        "username_eq": (
            lambda k: c.call(
                "GET", "/Users", {"filter": f'userName eq "LOAD{pick()}@contoso.com"'}
            ),
            _found,
        ),
        "externalid_eq": (
            lambda k: c.call("GET", "/Users", {"filter": f'externalId eq "loadext{pick()}"'}),
            _found,
        ),
        "membership_check": (check, _found),
    }


def group_operations(
    c: Customer, group_id: str, newcomers: Iterator[str]
) -> dict[str, tuple[Callable[[int], Reply], Callable[[Reply], bool]]]:
    members = [m.value for m in c.store.list_members(group_id, limit=50)]

    def add(k: int) -> Reply:
        body = patch({"op": "Add", "path": "members", "value": [{"value": next(newcomers)}]})
        return c.call("PATCH", f"/Groups/{group_id}", body=body)

    def check(k: int) -> Reply:
        flt = f'id eq "{group_id}" and members eq "{members[k % len(members)]}"'
        return c.call("GET", "/Groups", {"filter": flt, "excludedAttributes": "members"})

    return {
        "add_one_member": (add, lambda r: r.status == 200),
        "get_group_without_members": (
            lambda k: c.call("GET", f"/Groups/{group_id}", {"excludedAttributes": "members"}),
            lambda r: r.status == 200 and "members" not in r.json(),
        ),
        "membership_check": (check, _found),
    }


def interleaved(
    targets: dict[str, tuple[Customer, dict[str, Any]]], samples: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """Every operation at every size, the sizes interleaved call by call (one call of each size,
    in an order rotated call after call), ``samples`` calls of each per repeat. Interleaving
    whole blocks of ``samples`` calls let a slow spell of the shared machine (another job, a
    garbage collection) land on one size's block: the 2026-12-03 full run's p50 of one block
    moved 2.4-5.0 ms between repeats for a 1-request read. ``p50_ms`` is the p50 of all
    ``samples * repeats`` calls; ``p50_ms_repeats`` that of each repeat."""
    names = list(targets)
    calls: dict[str, dict[str, list[list[tuple[float, int, bool]]]]] = {
        name: {op: [[] for _ in range(repeats)] for op in targets[name][1]} for name in names
    }
    for repeat in range(repeats):
        for op in targets[names[0]][1]:
            for k in range(samples):
                for name in rotated(names, k + repeat):
                    customer, ops = targets[name]
                    action, ok = ops[op]
                    calls[name][op][repeat].append(customer.sample(action, ok, k))
    return {
        name: {
            op: {
                "p50_ms": round(percentile([c[0] for r in rs for c in r], 50) * 1000, 3),
                "p50_ms_repeats": [round(percentile([c[0] for c in r], 50) * 1000, 3) for r in rs],
                "storage_requests": int(median(c[1] for r in rs for c in r)),
                "failures": sum(c[2] for r in rs for c in r),
            }
            for op, rs in per_op.items()
        }
        for name, per_op in calls.items()
    }


def storage_costs(c: Customer, small_group: str, big_group: str) -> dict[str, int]:
    """Part 2: storage requests per operation (median of 3 runs), at the full size."""
    out: dict[str, int] = {}

    def count(action: Callable[[], Reply], expect: int) -> int:
        runs = []
        for _ in range(3):
            before = c.store.request_count
            reply = action()
            runs.append(c.store.request_count - before)
            assert reply.status == expect, (reply.status, reply.body[:300])
        return int(median(runs))

    uid = c.users[len(c.users) // 2]
    out["get_user"] = count(lambda: c.call("GET", f"/Users/{uid}"), 200)
    made: list[str] = []

    def create() -> Reply:
        reply = c.call(
            "POST",
            "/Users",
            body=entra_user(f"cost-{secrets.token_hex(5)}@x.com", f"cost-{secrets.token_hex(5)}"),
        )
        made.append(reply.json()["id"])
        return reply

    out["create_user"] = count(create, 201)
    out["username_eq"] = count(
        lambda: c.call("GET", "/Users", {"filter": 'userName eq "load7@contoso.com"'}), 200
    )
    out["externalid_eq"] = count(
        lambda: c.call("GET", "/Users", {"filter": 'externalId eq "loadext7"'}), 200
    )
    runs = iter(range(3))

    def patch_user() -> Reply:  # a different value each run, so every run writes
        n = next(runs)
        body = patch(
            {"op": "Replace", "path": "active", "value": "False" if n % 2 else "True"},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"p{n}@x.com"},
            {"op": "Add", "path": f"{ENT}:manager", "value": c.users[n]},
        )
        return c.call("PATCH", f"/Users/{made[0]}", body=body)

    out["patch_user"] = count(patch_user, 200)
    out["put_user"] = count(
        lambda: c.call(
            "PUT",
            f"/Users/{made[1]}",
            body=entra_user(f"put-{secrets.token_hex(4)}@x.com", f"put-{secrets.token_hex(4)}"),
        ),
        200,
    )
    for n in (0, 1, 5):
        groups = [c.new_group(f"del-{n}-{k}-{secrets.token_hex(3)}") for k in range(n)]
        victims = [c.new_user("victim") for _ in range(3)]
        for g in groups:
            c.call(
                "PATCH",
                f"/Groups/{g}",
                body=patch(
                    {"op": "Add", "path": "members", "value": [{"value": v} for v in victims]}
                ),
            )
        queue = iter(victims)
        out[f"delete_user_{n}_memberships"] = count(
            lambda q=queue: c.call("DELETE", f"/Users/{next(q)}"), 204
        )
    out["create_group"] = count(
        lambda: c.call(
            "POST",
            "/Groups",
            body={"schemas": [GROUP, MS_GROUP], "displayName": f"cost-{secrets.token_hex(5)}"},
        ),
        201,
    )
    for label, gid in (("small", small_group), ("big", big_group)):
        for k in (1, 33, 34, 100):
            # Fresh members each run: adds that add, removes that remove.
            batches = [[c.new_user("k") for _ in range(k)] for _ in range(3)]
            adds, removes = iter(batches), iter(batches)

            def add(gid: str = gid, adds: Iterator[list[str]] = adds) -> Reply:
                members = [{"value": u} for u in next(adds)]
                return c.call(
                    "PATCH",
                    f"/Groups/{gid}",
                    body=patch({"op": "Add", "path": "members", "value": members}),
                )

            def remove(gid: str = gid, removes: Iterator[list[str]] = removes) -> Reply:
                return c.call(
                    "PATCH",
                    f"/Groups/{gid}",
                    body=patch(
                        *[
                            {"op": "remove", "path": f'members[value eq "{u}"]'}
                            for u in next(removes)
                        ]
                    ),
                )

            out[f"add_{k}_members_{label}"] = count(add, 200)
            out[f"remove_{k}_members_{label}"] = count(remove, 200)
        member = c.store.list_members(gid, limit=1)[0].value
        check = {
            "filter": f'id eq "{gid}" and members eq "{member}"',
            "excludedAttributes": "members",
        }
        out[f"membership_check_{label}"] = count(lambda q=check: c.call("GET", "/Groups", q), 200)
        out[f"get_group_without_members_{label}"] = count(
            lambda g=gid: c.call("GET", f"/Groups/{g}", {"excludedAttributes": "members"}), 200
        )
    return out


def run(
    work: Path,
    *,
    levels: list[int],
    group_sizes: list[int],
    samples: int,
    repeats: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    result: dict[str, Any] = {"levels": {}, "groups": {}, "loading": {}}
    with BenchAzurite(work / "azurite-scale") as azurite:
        customers = {level: Customer(azurite, f"c{level}") for level in levels}
        for level, customer in customers.items():
            rate = customer.load_users(level)
            result["loading"][f"users_{level}_per_s"] = round(rate, 1)
            log(f"  customer of {level:,} users loaded ({rate:,.0f}/s)")
        largest = customers[levels[-1]]
        # Membership checks at every size: a group of 10 of each customer's own users.
        checks = {}
        for level, customer in customers.items():
            gid = customer.new_group("check")
            customer.load_members(gid, customer.users[:10])
            checks[level] = (gid, customer.users[:10])
        group_ids = {}
        for size in group_sizes:
            gid = largest.new_group(f"scale-{size}")
            rate = largest.load_members(gid, largest.users[:size])
            result["loading"][f"members_{size}_per_s"] = round(rate, 1)
            log(f"  group of {size:,} members loaded ({rate:,.0f} memberships/s)")
            group_ids[size] = gid
        log("  measuring (sizes interleaved)")
        by_level = interleaved(
            {str(level): (c, user_operations(c, *checks[level])) for level, c in customers.items()},
            samples,
            repeats,
        )
        newcomers = iter(
            [largest.new_user("probe") for _ in range(samples * repeats * len(group_sizes))]
        )
        by_size = interleaved(
            {
                str(size): (largest, group_operations(largest, gid, newcomers))
                for size, gid in group_ids.items()
            },
            samples,
            repeats,
        )
        result["levels"], result["groups"] = by_level, by_size
        # The bounded member read (INLINE_MEMBERS + 1 rows) a group pays once when its inline
        # member list is not known (after a member's deletion). Its read alone, by page size.
        big = group_ids[group_sizes[-1]]
        result["page_read_ms"] = {}
        for rows in (11, INLINE_MEMBERS + 1):
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                largest.store.list_members(big, limit=rows - 1)
                times.append(time.perf_counter() - began)
            result["page_read_ms"][str(rows)] = round(percentile(times, 50) * 1000, 3)
        log("  storage requests per operation")
        result["storage_requests"] = storage_costs(
            largest, group_ids[group_sizes[0]], group_ids[group_sizes[-1]]
        )
        result["users_loaded"] = len(largest.users)
        for customer in customers.values():
            customer.store.close()
    return result


__all__ = ["GROUP_SIZES", "USER_LEVELS", "run"]
