"""Part 1: an Entra provisioning cycle over HTTP, at concurrency 8, against our app (local
Functions host + Azurite) and against ``scim2-server`` (in memory), in the same run.

One cycle, per phase (a phase starts when the previous one has finished, as Entra's
dependencies require): match-then-create users; match-then-create groups by displayName
with ``excludedAttributes=members``; Entra-dialect user PATCHes (legacy for even users: one op
per path with the filtered e-mail path, the enterprise URN path and the manager as a plain
string; ``aadOptscim062020`` for odd users: a path-less replace with dotted keys plus the
filtered e-mail path and the manager); members added in batches of 10; membership checks
(``id eq .. and members eq ..``, positive and negative); soft-disable (``"False"`` as a string
in the legacy dialect); hard delete of half the users. Then the end state is read back through
the API and compared with what the cycle did (not timed).

The peer refuses two Entra shapes (bench/README.md): the Microsoft group schema URN and the
manager as a plain string. It gets the nearest RFC form instead (core schema only; manager
``{"value": id}``), counted in ``peer_adaptations``; everything else is byte-for-byte the same.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.client import Client, Reply
from bench.stats import latency_summary

# Entra's shapes, as the replay test has them (ENTRA.md); the cycle sends the same bodies.
from tests.e2e.test_entra_conversation import ENT, GROUP, MS_GROUP, PATCH, entra_user

__all__ = ["ENT", "GROUP", "MS_GROUP", "entra_user", "patch", "run_cycle"]
CONCURRENCY = 8
MEMBER_BATCH = 10
GROUPS_PER_USER = 2
USERS_PER_GROUP = 25

PHASES = [
    "create_users",
    "create_groups",
    "patch_users",
    "add_members",
    "check_members",
    "disable_users",
    "delete_users",
]


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, reply: Reply, ok: bool) -> None:
        self.latencies.append(reply.seconds)
        if not ok:
            self.errors[str(reply.status)] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "ops": len(self.latencies),
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0,
            **latency_summary(self.latencies),
            "errors": dict(self.errors),
        }


def patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


class Cycle:
    """One Entra cycle against one server; ``peer`` selects the peer's two adaptations."""

    def __init__(self, client: Client, users: int, *, peer: bool, tag: str) -> None:
        self.client, self.peer, self.tag = client, peer, tag
        self.n_users = users
        self.n_groups = max(GROUPS_PER_USER + 1, users * GROUPS_PER_USER // USERS_PER_GROUP)
        self.phases = {name: Phase(name) for name in PHASES}
        self.user_ids: list[str] = [""] * users
        self.group_ids: list[str] = [""] * self.n_groups
        self.adaptations = 0
        self.problems: list[str] = []

    # --- plan -----------------------------------------------------------------------------
    def user_name(self, i: int) -> str:
        return f"{self.tag}.user{i}@Contoso.com"

    def groups_of(self, i: int) -> list[int]:
        return sorted({(i + k * 7) % self.n_groups for k in range(GROUPS_PER_USER)})

    def not_group_of(self, i: int) -> int:
        mine = self.groups_of(i)
        return next(g for g in range(self.n_groups) if g not in mine)

    def manager_of(self, i: int) -> int | None:
        return None if i % 10 == 0 else i - i % 10

    def new_mail(self, i: int) -> str:
        return f"{self.tag}.mail{i}@contoso.com"

    # --- run --------------------------------------------------------------------------------
    def run(self, pool: ThreadPoolExecutor) -> None:
        self._phase(pool, "create_users", self.n_users, self._create_user)
        self._phase(pool, "create_groups", self.n_groups, self._create_group)
        self._phase(pool, "patch_users", self.n_users, self._patch_user)
        # Round robin over the groups, as Entra works through objects in parallel: concurrent
        # PATCHes of one group are possible (and must succeed) but not the rule.
        per_group = [_chunks(self._members(g), MEMBER_BATCH) for g in range(self.n_groups)]
        batches = [
            (g, chunks[n])
            for n in range(max(map(len, per_group)))
            for g, chunks in enumerate(per_group)
            if n < len(chunks)
        ]
        self._phase(pool, "add_members", len(batches), lambda k: self._add(*batches[k]))
        self._phase(pool, "check_members", self.n_users, self._check)
        self._phase(pool, "disable_users", self.n_users, self._disable)
        self._phase(pool, "delete_users", self.n_users // 2, lambda k: self._delete(2 * k))

    def _phase(
        self, pool: ThreadPoolExecutor, name: str, count: int, task: Callable[[int], None]
    ) -> None:
        start = time.perf_counter()
        for future in [pool.submit(task, k) for k in range(count)]:
            future.result()
        self.phases[name].seconds = time.perf_counter() - start

    def _members(self, g: int) -> list[int]:
        return [i for i in range(self.n_users) if g in self.groups_of(i)]

    def _create_user(self, i: int) -> None:
        phase, name = self.phases["create_users"], self.user_name(i)
        found = self.client.get("/Users", {"filter": f'userName eq "{name}"'})
        phase.record(found, found.status == 200 and found.json()["totalResults"] == 0)
        made = self.client.post("/Users", entra_user(name, f"{self.tag}-ext{i}"))
        phase.record(made, made.status == 201)
        if made.status == 201:
            self.user_ids[i] = made.json()["id"]

    def _create_group(self, g: int) -> None:
        phase, name = self.phases["create_groups"], f"{self.tag} Group {g}"
        found = self.client.get(
            "/Groups", {"filter": f'displayName eq "{name}"', "excludedAttributes": "members"}
        )
        phase.record(found, found.status == 200 and found.json()["totalResults"] == 0)
        schemas = [GROUP] if self.peer else [GROUP, MS_GROUP]
        self.adaptations += self.peer
        made = self.client.post(
            "/Groups",
            {"schemas": schemas, "displayName": name, "externalId": f"{self.tag}-gext{g}"},
        )
        phase.record(made, made.status == 201)
        if made.status == 201:
            self.group_ids[g] = made.json()["id"]

    def _manager_value(self, i: int) -> Any:
        manager = self.manager_of(i)
        assert manager is not None
        if self.peer:
            self.adaptations += 1
            return {"value": self.user_ids[manager]}
        return self.user_ids[manager]  # Entra sends a plain string (ENTRA.md "Manager")

    def _patch_user(self, i: int) -> None:
        mail, has_manager = self.new_mail(i), self.manager_of(i) is not None
        if i % 2 == 0:  # legacy dialect: capitalised ops, one op per path
            ops = [
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": mail},
                {"op": "Replace", "path": "name.givenName", "value": f"Given{i}"},
                {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": str(i)},
            ]
            if has_manager:
                ops.append({"op": "Add", "path": f"{ENT}:manager", "value": self._manager_value(i)})
        else:  # aadOptscim062020: a path-less replace with dotted keys, plus path ops
            ops = [
                {
                    "op": "replace",
                    "value": {"name.givenName": f"Given{i}", f"{ENT}:employeeNumber": str(i)},
                },
                {"op": "replace", "path": 'emails[type eq "work"].value', "value": mail},
            ]
            if has_manager:
                ops.append(
                    {"op": "replace", "path": f"{ENT}:manager", "value": self._manager_value(i)}
                )
        reply = self.client.patch(f"/Users/{self.user_ids[i]}", patch(*ops))
        self.phases["patch_users"].record(reply, reply.status in (200, 204))

    def _add(self, g: int, chunk: list[int]) -> None:
        body = patch(
            {"op": "Add", "path": "members", "value": [{"value": self.user_ids[i]} for i in chunk]}
        )
        reply = self.client.patch(f"/Groups/{self.group_ids[g]}", body)
        self.phases["add_members"].record(reply, reply.status in (200, 204))

    def _check(self, i: int) -> None:
        phase, uid = self.phases["check_members"], self.user_ids[i]
        for g, expected in [(g, 1) for g in self.groups_of(i)] + [(self.not_group_of(i), 0)]:
            flt = f'id eq "{self.group_ids[g]}" and members eq "{uid}"'
            reply = self.client.get("/Groups", {"filter": flt, "excludedAttributes": "members"})
            ok = reply.status == 200
            phase.record(reply, ok)
            if ok and reply.json()["totalResults"] != expected:
                self.problems.append(
                    f"membership check user{i} group{g}: "
                    f"{reply.json()['totalResults']} != {expected}"
                )

    def _disable(self, i: int) -> None:
        if i % 2 == 0:
            op = {"op": "Replace", "path": "active", "value": "False"}  # a string: legacy
        else:
            op = {"op": "replace", "path": "active", "value": False}
        reply = self.client.patch(f"/Users/{self.user_ids[i]}", patch(op))
        self.phases["disable_users"].record(reply, reply.status in (200, 204))

    def _delete(self, i: int) -> None:
        reply = self.client.delete(f"/Users/{self.user_ids[i]}")
        self.phases["delete_users"].record(reply, reply.status == 204)

    # --- end-state verification (read back through the API; not timed) ---------------------
    def verify(self, pool: ThreadPoolExecutor) -> list[str]:
        problems = list(self.problems)
        deleted = {i for i in range(self.n_users) if i % 2 == 0}

        def check_user(i: int) -> list[str]:
            reply = self.client.get(f"/Users/{self.user_ids[i]}")
            if i in deleted:
                return [] if reply.status == 404 else [f"user{i}: deleted but {reply.status}"]
            if reply.status != 200:
                return [f"user{i}: GET {reply.status}"]
            doc, out = reply.json(), []
            work = [e.get("value") for e in doc.get("emails", []) if e.get("type") == "work"]
            want = {
                "active": False,
                "userName": self.user_name(i),
                "work email": [self.new_mail(i)],
                "givenName": f"Given{i}",
                "employeeNumber": str(i),
            }
            got = {
                "active": doc.get("active"),
                "userName": doc.get("userName"),
                "work email": work,
                "givenName": doc.get("name", {}).get("givenName"),
                "employeeNumber": doc.get(ENT, {}).get("employeeNumber"),
            }
            manager = self.manager_of(i)
            if manager is not None:
                want["manager"] = self.user_ids[manager]
                got["manager"] = (doc.get(ENT, {}).get("manager") or {}).get("value")
            out += [f"user{i}: {k} {got[k]!r} != {v!r}" for k, v in want.items() if got[k] != v]
            return out

        def check_group(g: int) -> list[str]:
            reply = self.client.get(f"/Groups/{self.group_ids[g]}")
            if reply.status != 200:
                return [f"group{g}: GET {reply.status}"]
            got = {m["value"] for m in reply.json().get("members", [])}
            want = {self.user_ids[i] for i in self._members(g) if i not in deleted}
            if got != want:
                return [
                    f"group{g}: {len(got - want)} unexpected, {len(want - got)} missing members"
                ]
            return []

        for found in pool.map(check_user, range(self.n_users)):
            problems += found
        for found in pool.map(check_group, range(self.n_groups)):
            problems += found
        if "" in self.user_ids or "" in self.group_ids:
            problems.append("some creates failed")
        return problems

    def summary(self) -> dict[str, Any]:
        total_ops = sum(len(p.latencies) for p in self.phases.values())
        total_s = sum(p.seconds for p in self.phases.values())
        errors: Counter[str] = Counter()
        for p in self.phases.values():
            errors.update(p.errors)
        return {
            "ops": total_ops,
            "seconds": round(total_s, 3),
            "ops_per_s": round(total_ops / total_s, 1),
            "errors": dict(errors),
            "phases": {name: p.summary() for name, p in self.phases.items()},
        }


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_cycle(base_url: str, token: str, users: int, *, peer: bool) -> dict[str, Any]:
    client = Client(base_url, token)
    tag = "b" + uuid.uuid4().hex[:8]
    cycle = Cycle(client, users, peer=peer, tag=tag)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        cycle.run(pool)
        problems = cycle.verify(pool)
    out = cycle.summary()
    out["verification_problems"] = problems[:20]
    out["verification_problem_count"] = len(problems)
    out["peer_adaptations"] = cycle.adaptations
    return out
