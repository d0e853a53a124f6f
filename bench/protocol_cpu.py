"""Part 4: protocol CPU per operation, in process, with storage taken out: our service layer
(``ScimService.handle`` over ``MemoryStore``) against scim2-server's (its WSGI application's
``serve`` over ``InMemoryStorage``, plus the JSON encoding its WSGI layer does), same requests,
same run.

Operations: parse+validate a create (Entra's POST /Users body); filter parse+evaluate, both the
indexed Entra shape (``userName eq``) and a complex filter evaluated over 200 users; PATCH apply
in the Entra dialect (filtered e-mail path, dotted path-less replace, enterprise URN path);
render with ``attributes=``. CPU is ``time.process_time`` over a loop, after a warm-up; the
figure is the median of the repeats. The peer answers PATCH with 204 (no body to render), we
answer 200 with the resource; that is in the peer's favour.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from bench.client import SERVICE_BASE, service_request
from bench.entra_cycle import ENT, entra_user, patch
from bench.stats import median

POPULATION = 200
COMPLEX = (
    'emails[type eq "work" and value co "user1"] or '
    '(name.givenName sw "Giv" and active eq true and title ne "CEO")'
)


class Ours:
    def __init__(self) -> None:
        from scim_core.router import Router
        from scim_core.service import ScimService
        from scim_core.store.memory import MemoryStore

        self.service = Router(ScimService(MemoryStore()), None)

    def call(
        self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        resp = self.service.handle(service_request(method, path, query, body))
        return resp.status, resp.body


class Peer:
    def __init__(self) -> None:
        from scim2_server.memory import InMemoryStorage
        from scim2_server.requests import ScimRequest
        from scim2_server.service import ScimService
        from scim2_server.testserver.application import BearerTokenApplication
        from scim2_server.utils import load_default_provider

        provider = load_default_provider()
        service = ScimService(provider, secret="bench-secret-bench-secret-bench-secret")
        self.request_type = ScimRequest
        self.app = BearerTokenApplication(InMemoryStorage(), provider, service=service)

    def call(
        self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        req = self.request_type(
            method=method,
            base_url=SERVICE_BASE,
            path=path,
            query=query or {},
            headers={"Content-Type": "application/scim+json"},
            body=b"" if body is None else json.dumps(body).encode(),
        )
        resp = self.app.serve(req)
        # What its WSGI layer does with the response (scim2_server.applications.wsgi).
        encoded = b"" if resp.body is None else json.dumps(resp.body).encode()
        return resp.status.value, encoded


def _operations(side: Ours | Peer, peer: bool) -> dict[str, Callable[[int], tuple[int, Any]]]:
    ids = []
    for i in range(POPULATION):
        status, body = side.call(
            "POST", "/Users", body=entra_user(f"user{i}@contoso.com", f"ext{i}")
        )
        assert status == 201, body
        ids.append(json.loads(body)["id"])
    counter = iter(range(10**9))

    def create(k: int) -> tuple[int, Any]:
        n = next(counter)
        return side.call("POST", "/Users", body=entra_user(f"new{n}@contoso.com", f"nx{n}"))

    def filter_eq(k: int) -> tuple[int, Any]:
        name = f"user{k % POPULATION}@contoso.com"
        return side.call("GET", "/Users", {"filter": f'userName eq "{name}"'})

    def filter_complex(k: int) -> tuple[int, Any]:
        return side.call("GET", "/Users", {"filter": COMPLEX, "count": "10"})

    def patch_entra(k: int) -> tuple[int, Any]:
        manager = ids[(k + 1) % POPULATION]
        ops = [
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"m{k}@x.com"},
            {"op": "replace", "value": {"name.givenName": f"G{k}", f"{ENT}:department": f"D{k}"}},
            {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": str(k)},
            {
                "op": "Add",
                "path": f"{ENT}:manager",
                "value": {"value": manager} if peer else manager,
            },
        ]
        return side.call("PATCH", f"/Users/{ids[k % POPULATION]}", body=patch(*ops))

    def render(k: int) -> tuple[int, Any]:
        return side.call(
            "GET", f"/Users/{ids[k % POPULATION]}", {"attributes": "userName,emails,name.givenName"}
        )

    return {
        "create": create,
        "filter_eq": filter_eq,
        "filter_complex": filter_complex,
        "patch_entra": patch_entra,
        "render_attributes": render,
    }


EXPECTED = {
    "create": (201,),
    "filter_eq": (200,),
    "filter_complex": (200,),
    "patch_entra": (200, 204),
    "render_attributes": (200,),
}


def cpu_per_op(
    fn: Callable[[int], tuple[int, Any]], expected: tuple[int, ...], loops: int
) -> float:
    for k in range(20):  # warm-up
        status, body = fn(k)
        assert status in expected, (status, body[:300])
    start = time.process_time()
    for k in range(loops):
        fn(k)
    return (time.process_time() - start) / loops


def run(*, loops: int, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in EXPECTED:
        # Fresh stores of POPULATION users per operation: creates do not grow the filter's set.
        sides = {"ours": _operations(Ours(), False), "peer": _operations(Peer(), True)}
        runs: dict[str, list[float]] = {"ours": [], "peer": []}
        for _ in range(repeats):  # interleaved, so drift in the machine hits both alike
            for side, ops in sides.items():
                runs[side].append(cpu_per_op(ops[name], EXPECTED[name], loops))
        ours, peer = median(runs["ours"]), median(runs["peer"])
        results[name] = {
            "ours_us": round(ours * 1e6, 1),
            "peer_us": round(peer * 1e6, 1),
            "ratio": round(ours / peer, 3),
        }
    return results
