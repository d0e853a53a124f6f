"""Store fixtures: one Azurite per test session; every test gets fresh tables (a unique table-name
prefix), so tests never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from scim_core.store import Store
from scim_core.store.memory import MemoryStore
from scim_core.store.table import TableStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    location = tmp_path_factory.mktemp("azurite-store")
    with Azurite(ROOT, location, debug_log=location / "debug.log") as server:
        yield server


@pytest.fixture
def table_store(azurite: Azurite) -> Iterator[TableStore]:
    prefix = "t" + uuid.uuid4().hex[:12]
    store = TableStore.from_connection_string(azurite.connection_string, table_prefix=prefix)
    store.create_tables()
    yield store
    for name in store.table_names:
        store.service.delete_table(name)
    store.close()


@pytest.fixture(params=["memory", "table"])
def store(request: pytest.FixtureRequest) -> Store:
    """The contract suite runs against every Store implementation."""
    if request.param == "memory":
        return MemoryStore()
    table: TableStore = request.getfixturevalue("table_store")
    return table
