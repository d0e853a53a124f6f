"""Fixtures of the Graph sync tests: the fake Graph server (tests/graph/fake_graph.py), a test
credential, settings pointing msgraph-sdk at the fake, and SCIM users created through the SCIM
service itself (so their documents and index keys are exactly what Entra's POSTs produce)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from devhost.azurite import Azurite
from graph_enrich import GRAPH_USER_SCHEMA, SyncOptions, SyncReport, run_sync
from scim_core.http import ScimRequest
from scim_core.service import ScimService
from scim_core.settings import Settings
from scim_core.store import Store
from scim_core.store.memory import MemoryStore
from scim_core.store.table import TableStore
from tests.graph.fake_graph import TOKEN, FakeGraph

EXT = GRAPH_USER_SCHEMA


class FakeCredential:
    """An azure-identity style credential that hands out the fake's token."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


class NoCredential:
    """What DefaultAzureCredential does on a machine with no Azure login at all."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )


class Sleeps:
    """An ``asyncio.sleep`` stand-in that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(page_size=2).serve() as graph:
        yield graph


@pytest.fixture
def settings(fake: FakeGraph) -> Settings:
    return Settings.from_env({"GRAPH_BASE_URL": fake.base_url})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def options(sleeps: Sleeps) -> SyncOptions:
    return SyncOptions(credential=FakeCredential(), sleep=sleeps, workers=4)


@pytest.fixture
def table_store(azurite_http: Azurite) -> Iterator[TableStore]:
    """Fresh tables on the session's Azurite (tests/conftest.py), under a unique prefix."""
    store = TableStore.from_connection_string(
        azurite_http.connection_string, table_prefix="g" + uuid.uuid4().hex[:12]
    )
    store.create_tables()
    yield store
    for name in store.table_names:
        store.service.delete_table(name)
    store.close()


def provision(store: Store, user_name: str, external_id: str | None = None, **extra: Any) -> str:
    """Create a SCIM user the way Entra does (POST /Users through the service); its id."""
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": True,
        **({"externalId": external_id} if external_id else {}),
        **extra,
    }
    response = ScimService(store).handle(
        ScimRequest(
            "POST",
            "/Users",
            "https://scim.example/scim/v2",
            headers={"content-type": "application/scim+json"},
            body=json.dumps(body).encode(),
        )
    )
    assert response.status == 201, response.body
    return str(json.loads(response.body)["id"])


def enrichment(store: Store, scim_id: str) -> dict[str, Any]:
    return dict(store.get("User", scim_id).doc.get(EXT) or {})


def sync(settings: Settings, store: Store, options: SyncOptions) -> SyncReport:
    return run_sync(settings, store, options)
