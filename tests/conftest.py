"""Shared fixtures: one Azurite and one local Functions host (serving ``function_app``'s own
triggers on 127.0.0.1) per test session; the app module is imported once."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devhost.azurite import Azurite
from devhost.server import LocalHost
from tests.scimclient import Client

ROOT = Path(__file__).resolve().parents[1]

# Property tests (fuzz, differential) are derandomized by default: `make test` and CI run the
# same examples every time, so a red run is a regression, not a new random draw. Exploring for
# new counterexamples: HYPOTHESIS_PROFILE=explore make test (random draws).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def azurite_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    location = tmp_path_factory.mktemp("azurite-http")
    with Azurite(ROOT, location, debug_log=location / "debug.log") as azurite:
        yield azurite


@pytest.fixture(scope="session")
def host(azurite_http: Azurite) -> Iterator[tuple[LocalHost, str]]:
    token = secrets.token_urlsafe(32)
    env = {"TABLES_CONNECTION_STRING": azurite_http.connection_string, "SCIM_BEARER_TOKEN": token}
    with LocalHost("function_app", env=env, app_dir=ROOT) as local:
        yield local, token


@pytest.fixture
def scim(host: tuple[LocalHost, str]) -> Client:
    local, token = host
    return Client(local.base_url + "/scim/v2", token)
