"""Part 5: cold start. A fresh Python process imports the app and serves its first request
(Entra's Test Connection, ``GET /Users?filter=userName eq "<guid>"``); we time it from the
parent, spawn to answer (the child's answer line, not its exit), the same for both:

- ours: ``import function_app``, then the ``users`` trigger function called with a
  ``func.HttpRequest`` as the Functions worker calls it (the service, its Table store and
  the first storage requests to Azurite included: in Azure the first request pays for those too);
- the peer: import scim2-server's application and serve the same request in process (its
  in-memory storage needs no connection).

The child also reports which Graph / identity modules it imported (there must be none on our
HTTP path) and how long the import and the first request took by themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.servers import ROOT
from bench.stats import median

FILTER = 'userName eq "8b6a8f54-6c4c-4a5e-a4d5-3c1f0e1f2a9b"'

OURS = r"""
import sys, time
t0 = time.perf_counter()
import azure.functions as func
import function_app
t1 = time.perf_counter()

class Context(func.Context):
    invocation_id = property(lambda self: "cold-start")
    function_name = property(lambda self: "users")
    function_directory = property(lambda self: ".")
    thread_local_storage = property(lambda self: None)
    trace_context = property(lambda self: None)
    retry_context = property(lambda self: None)

req = func.HttpRequest("GET", "http://127.0.0.1/scim/v2/Users", params={"filter": FILTER},
                       headers={"Authorization": "Bearer " + TOKEN}, body=b"")
resp = function_app.users(req, Context())
t2 = time.perf_counter()
assert resp.status_code == 200, resp.get_body()
graph = sorted(m for m in sys.modules if m.startswith(("msgraph", "kiota", "azure.identity")))
print(json.dumps({"import_s": t1 - t0, "first_request_s": t2 - t1, "graph_modules": graph,
                  "modules": len(sys.modules)}), flush=True)
"""

PEER = r"""
import sys, time
t0 = time.perf_counter()
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_provider
t1 = time.perf_counter()
app = BearerTokenApplication(InMemoryStorage(), load_default_provider(), bearer_tokens=[TOKEN])
resp = app.serve(ScimRequest(method="GET", base_url="http://127.0.0.1/v2", path="/Users",
                             query={"filter": FILTER},
                             headers={"Authorization": "Bearer " + TOKEN}))
body = json.dumps(resp.body).encode()
t2 = time.perf_counter()
assert resp.status.value == 200, body
print(json.dumps({"import_s": t1 - t0, "first_request_s": t2 - t1, "graph_modules": [],
                  "modules": len(sys.modules)}), flush=True)
"""


def _spawn(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Spawn to answer: the clock stops when the child prints its answer line, not when it
    exits. A Functions worker lives on after its first request, so interpreter shutdown (which
    grows with the modules loaded: ~50-100 ms here) is no part of a cold start; it is reported
    apart as ``exit_ms``."""
    prelude = f"import json\nFILTER = {FILTER!r}\nTOKEN = 'cold-start-token'\n"
    began = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    answered = time.perf_counter()
    try:
        _, stderr = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    ended = time.perf_counter()
    if child.returncode != 0 or not line.strip():
        raise RuntimeError(f"cold-start child failed:\n{stderr[-2000:]}")
    out: dict[str, Any] = json.loads(line)
    out["total_s"] = answered - began
    out["exit_s"] = ended - answered
    return out


def run(connection_string: str, *, repeats: int) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SCIM_", "TABLES_"))}
    base["PYTHONDONTWRITEBYTECODE"] = "1"  # the same (already compiled) bytecode for both
    ours_env = {
        **base,
        "TABLES_CONNECTION_STRING": connection_string,
        "SCIM_BEARER_TOKEN": "cold-start-token",
    }
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
    _spawn(OURS, ours_env)  # creates the tables once, so every measured run finds them
    for _ in range(repeats):  # interleaved
        runs["ours"].append(_spawn(OURS, ours_env))
        runs["peer"].append(_spawn(PEER, base))
    out: dict[str, Any] = {}
    for side, items in runs.items():
        out[side] = {
            key: round(median(r[key] for r in items) * 1000, 1)
            for key in ("total_s", "import_s", "first_request_s", "exit_s")
        }
        out[side] = {k.replace("_s", "_ms"): v for k, v in out[side].items()}
        out[side]["graph_modules"] = sorted({m for r in items for m in r["graph_modules"]})
        out[side]["modules_loaded"] = int(median(r["modules"] for r in items))
    out["ratio"] = round(out["ours"]["total_ms"] / out["peer"]["total_ms"], 3)
    return out
