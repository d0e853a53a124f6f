"""End-to-end fixtures: Azurite + the local Functions host serving ``function_app``'s own
triggers on 127.0.0.1. One host per test session (the app module is imported once)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.azurite import Azurite
from devhost.server import LocalHost

ROOT = Path(__file__).resolve().parents[2]
SCIM_JSON = "application/scim+json"


class Client:
    """A tiny SCIM client: base URL ``.../scim/v2`` and the bearer token."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token
        self.http = requests.Session()

    def request(self, method: str, path: str, json: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, data: bytes | str | None = None,
                params: dict[str, str] | None = None) -> requests.Response:
        h = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        if json is not None or data is not None:
            h["Content-Type"] = SCIM_JSON
        h.update(headers or {})
        body = data
        if json is not None:
            import json as _json

            body = _json.dumps(json)
        return self.http.request(method, self.base + path, data=body, headers=h, params=params,
                                 timeout=30)

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


@pytest.fixture(scope="session")
def azurite_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    location = tmp_path_factory.mktemp("azurite-http")
    with Azurite(ROOT, location, debug_log=location / "debug.log") as azurite:
        yield azurite


@pytest.fixture(scope="session")
def host(azurite_http: Azurite) -> Iterator[tuple[LocalHost, str]]:
    token = secrets.token_urlsafe(32)
    env = {"TABLES_CONNECTION_STRING": azurite_http.connection_string,
           "SCIM_BEARER_TOKEN": token}
    with LocalHost("function_app", env=env, app_dir=ROOT) as local:
        yield local, token


@pytest.fixture
def scim(host: tuple[LocalHost, str]) -> Client:
    local, token = host
    return Client(local.base_url + "/scim/v2", token)


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
