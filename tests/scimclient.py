"""A tiny SCIM HTTP client for the end-to-end and compliance tests."""

from __future__ import annotations

import json as _json
import secrets
from typing import Any

import requests

SCIM_JSON = "application/scim+json"


class Client:
    """A tiny SCIM client: base URL ``.../scim/v2`` and the bearer token."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token
        self.http = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | str | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        h = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        if json is not None or data is not None:
            h["Content-Type"] = SCIM_JSON
        h.update(headers or {})
        body = data
        if json is not None:
            body = _json.dumps(json)
        return self.http.request(
            method, self.base + path, data=body, headers=h, params=params, timeout=30
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
