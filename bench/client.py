"""A small, thread-safe HTTP client for the load generators (one keep-alive connection per
thread), lighter than ``requests`` so that the client's own CPU takes less of the two cores
the servers also need."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from scim_core.http import ScimRequest

SERVICE_BASE = "http://127.0.0.1/scim/v2"  # the base URL of in-process service requests


@dataclass
class Reply:
    status: int  # 0: the connection failed
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Client:
    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json",
        }
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
    ) -> Reply:
        url = self.prefix + path + ("?" + urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        start = time.perf_counter()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, url, body=data, headers=self.headers)
                resp = conn.getresponse()
                payload = resp.read()
                return Reply(resp.status, payload, time.perf_counter() - start)
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                # A keep-alive connection the server closed while idle: one fresh attempt,
                # timed from the first (never hides a failure of the fresh connection).
                if attempt == 2:
                    return Reply(0, b"", time.perf_counter() - start)
        raise AssertionError("unreachable")

    def get(self, path: str, params: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, params)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Reply:
        return self.request("PATCH", path, body=body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_request(
    method: str, path: str, query: dict[str, str] | None = None, body: Any = None
) -> ScimRequest:
    """A request for ``ScimService.handle`` in process (parts 2-4), below ``SERVICE_BASE``."""
    return ScimRequest(
        method=method,
        path=path,
        base_url=SERVICE_BASE,
        query=query or {},
        headers={"content-type": "application/scim+json"},
        body=b"" if body is None else json.dumps(body).encode(),
    )
