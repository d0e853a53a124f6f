"""Parts 2 and 3: storage requests per operation, and cost growth with the customer's size.

Our app's own triggers are served in this process (devhost's LocalHost, over Azurite), so the
storage requests of each HTTP request can be counted at the Table client's transport
(``TableStore.request_count``, the service's own store). Users are loaded with the store's batch
path (``TableStore.bulk_load``: many users per entity-group transaction, several transactions in
flight), members with the store's write path (``replace`` with a member change: 49-50
memberships per transaction); never through 100k HTTP calls.

Growth: at 1k, 10k and 100k users, the p50 of ``GET /Users/{id}``, ``userName eq``,
``externalId eq`` and a membership check; with groups of 10, 10k and 100k members, the p50 of
adding one member and of ``GET /Groups/{id}?excludedAttributes=members`` (and the membership
check). Each p50 is over ``samples`` requests, repeated ``repeats`` times; the median of the
repeats is reported. Request counts are taken on the same requests.
"""

from __future__ import annotations

import math
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.client import Client, Reply
from bench.entra_cycle import ENT, GROUP, MS_GROUP, entra_user, patch
from bench.host import no_nagle
from bench.servers import ROOT, BenchAzurite
from bench.stats import median, percentile
from scim_core.store import Member, MemberChange
from scim_core.table import TableStore

USER_LEVELS = [1_000, 10_000, 100_000]
GROUP_SIZES = [10, 10_000, 100_000]
MEMBER_CHUNK = 5_000  # memberships per store write while loading


class Bench:
    def __init__(self, azurite: BenchAzurite, host_url: str, token: str) -> None:
        import function_app

        self.client = Client(host_url + "/scim/v2", token)
        assert self.client.get("/ServiceProviderConfig").status == 200  # builds the service
        store = function_app.service().store
        assert isinstance(store, TableStore)
        self.app_store: TableStore = store
        self.loader = TableStore.from_connection_string(azurite.connection_string)
        self.users: list[str] = []  # ids of loaded users, in load order
        self.rng = random.Random(7)

    # --- measuring ---------------------------------------------------------------------------
    def measure(self, action: Callable[[int], Reply], ok: Callable[[Reply], bool],
                samples: int) -> tuple[float, int, int]:
        """(p50 seconds, median storage requests, failures) of ``samples`` calls."""
        times, counts, failures = [], [], 0
        for k in range(samples):
            before = self.app_store.request_count
            reply = action(k)
            counts.append(self.app_store.request_count - before)
            times.append(reply.seconds)
            failures += not ok(reply)
        return percentile(times, 50), int(median(counts)), failures

    def repeated(self, action: Callable[[int], Reply], ok: Callable[[Reply], bool],
                 samples: int, repeats: int) -> dict[str, Any]:
        runs = [self.measure(action, ok, samples) for _ in range(repeats)]
        return {"p50_ms": round(median(r[0] for r in runs) * 1000, 3),
                "p50_ms_repeats": [round(r[0] * 1000, 3) for r in runs],
                "storage_requests": int(median(r[1] for r in runs)),
                "failures": sum(r[2] for r in runs)}

    # --- loading -------------------------------------------------------------------------------
    def load_users(self, total: int) -> float:
        """Bulk-load users until ``total`` exist; returns users/s."""
        start, count = len(self.users), total - len(self.users)
        if count <= 0:
            return math.nan
        ids = [str(uuid.uuid4()) for _ in range(count)]

        def items() -> Iterator[tuple[dict[str, Any], dict[str, str | None]]]:
            for n, uid in enumerate(ids, start):
                body = entra_user(f"load{n}@contoso.com", f"loadext{n}")
                doc = {k: v for k, v in body.items()
                       if k not in ("schemas", "meta", "roles", "addresses")}
                doc["id"] = uid
                doc["meta"] = {"resourceType": "User", "created": "2026-01-01T00:00:00.000Z",
                               "lastModified": "2026-01-01T00:00:00.000Z"}
                keys = {"userName": doc["userName"].casefold(), "externalId": doc["externalId"]}
                yield doc, keys

        began = time.perf_counter()
        self.loader.bulk_load("User", items(), workers=8)
        seconds = time.perf_counter() - began
        self.users += ids
        return count / seconds

    def new_group(self, name: str) -> str:
        reply = self.client.post("/Groups", {"schemas": [GROUP, MS_GROUP], "displayName": name})
        assert reply.status == 201, reply.body
        return str(reply.json()["id"])

    def load_members(self, group_id: str, member_ids: list[str]) -> float:
        """Add memberships through the store's write path; returns memberships/s."""
        began = time.perf_counter()
        for start in range(0, len(member_ids), MEMBER_CHUNK):
            chunk = [Member(uid) for uid in member_ids[start : start + MEMBER_CHUNK]]
            current = self.loader.get("Group", group_id)
            self.loader.replace("Group", current.doc, current.keys, current.etag,
                                MemberChange(add=chunk))
        return len(member_ids) / (time.perf_counter() - began)

    def new_user(self, tag: str) -> str:
        reply = self.client.post("/Users", entra_user(f"{tag}-{secrets.token_hex(4)}@x.com",
                                                      f"{tag}-{secrets.token_hex(4)}"))
        assert reply.status == 201, reply.body
        return str(reply.json()["id"])


def user_ops(b: Bench, samples: int, repeats: int, small_group: str,
             small_members: list[str]) -> dict[str, Any]:
    pick = lambda: b.rng.randrange(len(b.users))  # noqa: E731
    total_ok = lambda r: r.status == 200 and r.json()["totalResults"] == 1  # noqa: E731
    out: dict[str, Any] = {}
    out["get_user"] = b.repeated(lambda k: b.client.get(f"/Users/{b.users[pick()]}"),
                                 lambda r: r.status == 200, samples, repeats)
    out["username_eq"] = b.repeated(
        lambda k: b.client.get("/Users", {"filter": f'userName eq "LOAD{pick()}@contoso.com"'}),
        total_ok, samples, repeats)
    out["externalid_eq"] = b.repeated(
        lambda k: b.client.get("/Users", {"filter": f'externalId eq "loadext{pick()}"'}),
        total_ok, samples, repeats)
    out["membership_check"] = b.repeated(
        lambda k: b.client.get("/Groups", {
            "filter": f'id eq "{small_group}" and '
                      f'members eq "{small_members[k % len(small_members)]}"',
            "excludedAttributes": "members"}),
        total_ok, samples, repeats)
    return out


def group_ops(b: Bench, group_id: str, samples: int, repeats: int) -> dict[str, Any]:
    members = [m.value for m in b.app_store.list_members(group_id, limit=50)]
    newcomers = [b.new_user("probe") for _ in range(samples * repeats)]
    queue = iter(newcomers)
    add = {"op": "Add", "path": "members"}
    out: dict[str, Any] = {}
    out["add_one_member"] = b.repeated(
        lambda k: b.client.patch(f"/Groups/{group_id}",
                                 patch({**add, "value": [{"value": next(queue)}]})),
        lambda r: r.status == 200, samples, repeats)
    out["get_group_without_members"] = b.repeated(
        lambda k: b.client.get(f"/Groups/{group_id}", {"excludedAttributes": "members"}),
        lambda r: r.status == 200 and "members" not in r.json(), samples, repeats)
    out["membership_check"] = b.repeated(
        lambda k: b.client.get("/Groups", {
            "filter": f'id eq "{group_id}" and members eq "{members[k % len(members)]}"',
            "excludedAttributes": "members"}),
        lambda r: r.status == 200 and r.json()["totalResults"] == 1, samples, repeats)
    return out


def storage_costs(b: Bench, small_group: str, big_group: str) -> dict[str, Any]:
    """Part 2: storage requests per operation (medians of 3), at the loaded size."""
    c, out = b.client, {}

    def count(action: Callable[[], Reply], expect: int) -> int:
        runs = []
        for _ in range(3):
            before = b.app_store.request_count
            reply = action()
            runs.append(b.app_store.request_count - before)
            assert reply.status == expect, (reply.status, reply.body[:300])
        return int(median(runs))

    uid = b.users[len(b.users) // 2]
    out["get_user"] = count(lambda: c.get(f"/Users/{uid}"), 200)
    made: list[str] = []

    def create() -> Reply:
        reply = c.post("/Users", entra_user(f"cost-{secrets.token_hex(5)}@x.com",
                                            f"cost-{secrets.token_hex(5)}"))
        made.append(reply.json()["id"])
        return reply

    out["create_user"] = count(create, 201)
    out["username_eq"] = count(
        lambda: c.get("/Users", {"filter": 'userName eq "load7@contoso.com"'}), 200)
    out["externalid_eq"] = count(
        lambda: c.get("/Users", {"filter": 'externalId eq "loadext7"'}), 200)
    runs = iter(range(3))

    def patch_user() -> Reply:  # a different value each run, so every run writes
        n = next(runs)
        body = patch({"op": "Replace", "path": "active", "value": "False" if n % 2 else "True"},
                     {"op": "Replace", "path": 'emails[type eq "work"].value',
                      "value": f"p{n}@x.com"},
                     {"op": "Add", "path": f"{ENT}:manager", "value": b.users[n]})
        return c.patch(f"/Users/{made[0]}", body)

    out["patch_user"] = count(patch_user, 200)
    out["put_user"] = count(lambda: c.request("PUT", f"/Users/{made[1]}", body=entra_user(
        f"put-{secrets.token_hex(4)}@x.com", f"put-{secrets.token_hex(4)}")), 200)
    for n in (0, 1, 5):
        groups = [b.new_group(f"del-{n}-{k}-{secrets.token_hex(3)}") for k in range(n)]
        victims = [b.new_user("victim") for _ in range(3)]
        for g in groups:
            c.patch(f"/Groups/{g}", patch({"op": "Add", "path": "members",
                                           "value": [{"value": v} for v in victims]}))
        queue = iter(victims)
        out[f"delete_user_{n}_memberships"] = count(
            lambda q=queue: c.delete(f"/Users/{next(q)}"), 204)
    out["create_group"] = count(lambda: c.post("/Groups", {
        "schemas": [GROUP, MS_GROUP], "displayName": f"cost-{secrets.token_hex(5)}"}), 201)
    for label, gid in (("small", small_group), ("big", big_group)):
        for k in (1, 49, 50, 100):
            # Fresh members each run: adds that add, removes that remove.
            batches = [[b.new_user("k") for _ in range(k)] for _ in range(3)]
            adds, removes = iter(batches), iter(batches)

            def add(gid: str = gid, adds: Iterator[list[str]] = adds) -> Reply:
                members = [{"value": u} for u in next(adds)]
                return c.patch(f"/Groups/{gid}", patch({"op": "Add", "path": "members",
                                                        "value": members}))

            def remove(gid: str = gid, removes: Iterator[list[str]] = removes) -> Reply:
                return c.patch(f"/Groups/{gid}", patch(*[
                    {"op": "remove", "path": f'members[value eq "{u}"]'} for u in next(removes)]))

            out[f"add_{k}_members_{label}"] = count(add, 200)
            out[f"remove_{k}_members_{label}"] = count(remove, 200)
        member = b.app_store.list_members(gid, limit=1)[0].value
        check = {"filter": f'id eq "{gid}" and members eq "{member}"',
                 "excludedAttributes": "members"}
        out[f"membership_check_{label}"] = count(lambda q=check: c.get("/Groups", q), 200)
        out[f"get_group_without_members_{label}"] = count(
            lambda g=gid: c.get(f"/Groups/{g}", {"excludedAttributes": "members"}), 200)
    return out


def run(work: Path, *, levels: list[int], group_sizes: list[int], samples: int,
        repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    from devhost.server import LocalHost

    no_nagle()
    token = secrets.token_urlsafe(24)
    result: dict[str, Any] = {"levels": {}, "groups": {}, "loading": {}}
    with ExitStack() as stack:
        azurite = stack.enter_context(BenchAzurite(work / "azurite-scale"))
        env = {"TABLES_CONNECTION_STRING": azurite.connection_string, "SCIM_BEARER_TOKEN": token}
        host = stack.enter_context(LocalHost("function_app", env=env, app_dir=ROOT))
        b = Bench(azurite, host.base_url, token)
        small_group = b.new_group("scale-small")
        for level in levels:
            rate = b.load_users(level)
            result["loading"][f"users_to_{level}_per_s"] = round(rate, 1)
            if level == levels[0]:
                small_members = b.users[:10]
                b.load_members(small_group, small_members)
            log(f"  {level} users loaded ({rate:.0f}/s); measuring")
            result["levels"][str(level)] = user_ops(b, samples, repeats, small_group,
                                                    small_members)
        group_ids = {}
        for size in group_sizes:
            gid = b.new_group(f"scale-{size}")
            rate = b.load_members(gid, b.users[:size])
            result["loading"][f"members_{size}_per_s"] = round(rate, 1)
            log(f"  group of {size} loaded ({rate:.0f} memberships/s); measuring")
            group_ids[size] = gid
            result["groups"][str(size)] = group_ops(b, gid, samples, repeats)
        # The one cost that follows group size: the PATCH response's bounded member page
        # (service.PATCH_MEMBERS_LIMIT + 1 rows). Its read alone, at a few page sizes.
        big = group_ids[group_sizes[-1]]
        result["page_read_ms"] = {}
        for rows in (11, 101, 1000):
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                b.app_store.list_members(big, limit=rows - 1)
                times.append(time.perf_counter() - began)
            result["page_read_ms"][str(rows)] = round(percentile(times, 50) * 1000, 3)
        log("  storage requests per operation")
        result["storage_requests"] = storage_costs(b, group_ids[group_sizes[0]],
                                                   group_ids[group_sizes[-1]])
        result["users_loaded"] = len(b.users)
        b.loader.close()
    return result
