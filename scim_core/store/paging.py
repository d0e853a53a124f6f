"""Range reads of a partition's rows by RowKey prefix: every row, or one bounded page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableEntity

from scim_core.store.errors import error_code

MAX_PAGE_ROWS = 1000  # a query returns at most 1,000 entities per response


def range_rows(
    table: TableClient,
    pk: str,
    prefix: str,
    select: list[str] | None,
    *,
    after: str | None = None,
    page_size: int | None = None,
) -> Iterator[TableEntity]:
    """Rows whose RowKey starts with ``prefix`` (ending in ``|``; ``}`` sorts right after it),
    in RowKey order; with ``after``, only those whose RowKey sorts after it.

    Lazy: one response (at most ``page_size`` rows, 1,000 by default and at most) is held at a
    time, and the next is asked for with the previous one's continuation token (the SDK's
    ``by_page(continuation_token=...)``) only when the caller iterates that far. A response may
    hold fewer rows than asked for, even none, and still carry a token (Learn, "Query timeout
    and pagination"), so the loop follows tokens, never row counts."""
    if page_size is not None and not 0 < page_size <= MAX_PAGE_ROWS:
        raise ValueError(f"one request reads 1 to {MAX_PAGE_ROWS} rows, not {page_size}")
    past = after is not None and after >= prefix
    query = f"PartitionKey eq @pk and RowKey {'gt' if past else 'ge'} @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": after if past else prefix, "hi": prefix[:-1] + "}"}
    try:
        token: Any = None
        while True:
            pages: Any = table.query_entities(
                query, parameters=params, select=select, results_per_page=page_size
            ).by_page(continuation_token=token)
            page = next(pages, None)
            if page is None:
                return
            yield from page
            token = pages.continuation_token
            if not token:
                return
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return  # no table: no rows (a store whose tables are created on demand)
        raise


def first_page(
    table: TableClient,
    pk: str,
    prefix: str,
    size: int,
    select: list[str] | None = None,
    *,
    after: str | None = None,
) -> list[TableEntity]:
    """At most ``size`` rows of a RowKey prefix, in one request (a page holds up to 1,000);
    with ``after`` (a RowKey, or the part of one after ``prefix``), only rows after it."""
    if size > MAX_PAGE_ROWS:
        # More would silently come back as 1,000 rows, and a caller asking for limit + 1 could
        # no longer tell a group of more than ``limit`` members from one of exactly 1,000.
        raise ValueError(f"one request reads at most {MAX_PAGE_ROWS} rows, not {size}")
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": pk, "lo": prefix, "hi": prefix[:-1] + "}"}
    if after is not None:
        query = query.replace("RowKey ge", "RowKey gt")
        params["lo"] = after if after.startswith(prefix) else prefix + after
    pages = table.query_entities(
        query, parameters=params, results_per_page=size, select=select
    ).by_page()
    try:
        return list(next(pages, []))[:size]
    except HttpResponseError as exc:
        if exc.status_code == 404 and error_code(exc) == "TableNotFound":
            return []  # no table: no rows
        raise
