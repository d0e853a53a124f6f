"""Range reads of a partition's rows by RowKey prefix: every row, or one bounded page."""

from __future__ import annotations

from collections.abc import Iterator

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableEntity

from scim_core.store.errors import error_code

MAX_PAGE_ROWS = 1000  # a query returns at most 1,000 entities per response


def range_rows(
    table: TableClient, pk: str, prefix: str, select: list[str] | None
) -> Iterator[TableEntity]:
    """Rows whose RowKey starts with ``prefix`` (ending in ``|``; ``}`` sorts right after it)."""
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": prefix, "hi": prefix[:-1] + "}"}
    try:
        yield from table.query_entities(query, parameters=params, select=select)
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return  # no table: no rows (a store whose tables are created on demand)
        raise


def first_page(
    table: TableClient, pk: str, prefix: str, size: int, select: list[str] | None = None
) -> list[TableEntity]:
    """At most ``size`` rows of a RowKey prefix, in one request (a page holds up to 1,000)."""
    if size > MAX_PAGE_ROWS:
        # More would silently come back as 1,000 rows, and a caller asking for limit + 1 could
        # no longer tell a group of more than ``limit`` members from one of exactly 1,000.
        raise ValueError(f"one request reads at most {MAX_PAGE_ROWS} rows, not {size}")
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": prefix, "hi": prefix[:-1] + "}"}
    pages = table.query_entities(
        query, parameters=params, results_per_page=size, select=select
    ).by_page()
    try:
        return list(next(pages, []))[:size]
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return []  # no table: no rows
        raise
