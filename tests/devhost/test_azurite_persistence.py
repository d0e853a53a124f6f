"""`make run` keeps data across restarts: stopping Azurite must let it save its database."""

from __future__ import annotations

from pathlib import Path

from azure.data.tables import TableServiceClient

from devhost.azurite import Azurite

ROOT = Path(__file__).resolve().parents[2]


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with Azurite(ROOT, tmp_path) as first:
        client = TableServiceClient.from_connection_string(first.connection_string)
        client.create_table("persisted").create_entity(
            {"PartitionKey": "p", "RowKey": "r", "v": 42}
        )
    with Azurite(ROOT, tmp_path) as second:
        client = TableServiceClient.from_connection_string(second.connection_string)
        assert client.get_table_client("persisted").get_entity("p", "r")["v"] == 42
