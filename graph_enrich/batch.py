"""Graph JSON batching: many user requests, 20 to a ``POST /$batch``.

Microsoft Learn, "Combine multiple HTTP requests using JSON batching"
(https://learn.microsoft.com/graph/json-batching): a batch holds at most 20 requests, each with
a unique ``id``, a ``method`` and a ``url`` relative to the version root, optional ``headers``
and ``body`` (``Content-Type`` required with a body). The batch itself answers 200 and each
request gets its own ``{"id", "status", "headers", "body"}`` in ``responses``, "in any order".
A request Graph throttles answers 429 *inside* the 200 with its own ``Retry-After``: the
client resends that request itself ("Microsoft Graph throttling guidance",
https://learn.microsoft.com/graph/throttling: "wait the number of seconds specified in the
Retry-After header"). The whole batch can also be throttled; ``GraphClient`` retries that.

Items Graph throttled (429, and 503/504, which carry Retry-After too) are resent in a later
batch after the longest Retry-After among them, while attempts and the run's budget allow;
an item still throttled then keeps its answer, and the caller leaves its work for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from graph_enrich.budget import Budget
from graph_enrich.graph import MAX_ATTEMPTS, REQUEST_TIMEOUT, GraphClient

log = logging.getLogger("graph_enrich")

#: Learn, "JSON batching": "combining multiple requests (up to 20)".
MAX_BATCH = 20
#: Batches in flight at once (one run's connection; Graph's per-app limits apply per tenant).
CONCURRENT_BATCHES = 4
_THROTTLED = frozenset({429, 503, 504})


@dataclass(frozen=True)
class Request:
    id: str
    method: str
    url: str
    """Relative to the version root, e.g. ``/users/{id}``."""
    body: dict[str, Any] | None = None

    def envelope(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method, "url": self.url}
        if self.body is not None:
            item["body"] = self.body
            item["headers"] = {"Content-Type": "application/json"}
        return item


@dataclass(frozen=True)
class Response:
    id: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def throttled(self) -> bool:
        return self.status in _THROTTLED

    @property
    def retry_after(self) -> float | None:
        value = next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None)
        return float(value) if isinstance(value, str) and value.strip().isdigit() else None

    def error(self) -> str:
        """Graph's error as one line: status, code, message (the standard error body)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return f"{self.status}"
        return f"{self.status} {error.get('code') or ''}: {error.get('message') or ''}".strip()


#: What an item that was never sent (the budget ran out first) answers.
NOT_SENT = 0


class Batcher:
    """Sends requests in batches; counts the batches (Graph requests) it made."""

    def __init__(self, graph: GraphClient, budget: Budget) -> None:
        self.graph = graph
        self.budget = budget
        self.batches = 0
        self.waits = 0

    async def send(self, requests: list[Request]) -> dict[str, Response]:
        """Every request's final answer by id (``status`` :data:`NOT_SENT` when the budget
        did not allow sending it)."""
        answers: dict[str, Response] = {}
        pending = list(requests)
        limit = asyncio.Semaphore(CONCURRENT_BATCHES)

        async def one(chunk: list[Request]) -> list[Response]:
            async with limit:
                if not self.budget.allows(REQUEST_TIMEOUT):
                    return [Response(r.id, NOT_SENT) for r in chunk]
                return await self._batch(chunk)

        for attempt in range(1, MAX_ATTEMPTS + 1):
            chunks = [pending[i : i + MAX_BATCH] for i in range(0, len(pending), MAX_BATCH)]
            for found in await asyncio.gather(*(one(c) for c in chunks)):
                answers.update((r.id, r) for r in found)
            throttled = [r for r in pending if answers[r.id].throttled]
            if not throttled or attempt == MAX_ATTEMPTS:
                break
            wait = max(
                (answers[r.id].retry_after or float(2**attempt) for r in throttled), default=0.0
            )
            if not self.budget.allows(wait + REQUEST_TIMEOUT):
                break
            log.warning(
                "Graph throttled %d of %d batched requests; resending them in %.0f s",
                len(throttled),
                len(pending),
                wait,
            )
            self.waits += 1
            await self.graph.sleep(wait)
            pending = throttled
        return answers

    async def _batch(self, chunk: list[Request]) -> list[Response]:
        self.batches += 1
        answer = await self.graph.post_json("/$batch", {"requests": [r.envelope() for r in chunk]})
        found = answer.get("responses")
        by_id: dict[str, dict[str, Any]] = {}
        for item in found if isinstance(found, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                by_id[item["id"].lower()] = item  # ids are case-insensitive
        out = []
        for r in chunk:
            item = by_id.get(r.id.lower())
            if item is None:
                # An id Graph did not answer is resent (as if throttled), never taken as done.
                out.append(Response(r.id, 503))
                continue
            headers = item.get("headers")
            out.append(
                Response(
                    r.id,
                    int(item.get("status") or 0),
                    {str(k): str(v) for k, v in headers.items()}
                    if isinstance(headers, dict)
                    else {},
                    item.get("body"),
                )
            )
        return out
