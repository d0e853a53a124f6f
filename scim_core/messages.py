"""Protocol messages (RFC 7644): query parameters and SearchRequest (:class:`Query`), and
ListResponse. The BulkRequest model is in scim_core.bulk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"

#: Largest page the service returns (announced as ``filter.maxResults``).
MAX_RESULTS = 1000
#: Page size when the client gives no ``count``.
DEFAULT_COUNT = 100

#: Bounds on the other query parameters (RFC 7644 §3.4.2.5 sets none; a request must not make the
#: service do unbounded work before it answers): names per ``attributes``/``excludedAttributes``
#: list, and characters per attribute name or ``sortBy``.
MAX_ATTRIBUTE_NAMES = 100
MAX_NAME_CHARS = 300
_INTEGER = re.compile(r"[+-]?[0-9]{1,4000}")  # int() refuses longer digit strings


class QueryError(ValueError):
    """A query parameter that cannot be used: ``param`` is its wire name."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Query:
    """A query: from GET query parameters (RFC 7644 §3.4.2) or a SearchRequest body (§3.4.3).

    A plain class rather than a pydantic model: it is parsed on every list request, and keeping
    pydantic (~75 ms of imports and schema building) off the HTTP path is most of what separates
    a cold start from a warm one (bench/README.md, "Cold start")."""

    attributes: list[str] = field(default_factory=list)
    excluded_attributes: list[str] = field(default_factory=list)
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None  # "ascending" or "descending"
    start_index: int = 1
    count: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Query:
        """From wire names (``excludedAttributes``...); unknown names are ignored. Raises
        :class:`QueryError` for a value of the wrong type or out of its domain."""
        order = _text(params, "sortOrder")
        sort_by = _text(params, "sortBy")
        if sort_by is not None and len(sort_by) > MAX_NAME_CHARS:
            raise QueryError("sortBy", f"is longer than {MAX_NAME_CHARS} characters")
        if order is not None:
            if order.lower() not in ("ascending", "descending"):
                raise QueryError("sortOrder", "must be 'ascending' or 'descending'")
            order = order.lower()
        start = _integer(params, "startIndex")
        count = _integer(params, "count")
        return cls(
            attributes=_csv(params, "attributes"),
            excluded_attributes=_csv(params, "excludedAttributes"),
            filter=_text(params, "filter"),
            sort_by=sort_by,
            sort_order=order,
            # RFC 7644 §3.4.2.4: a startIndex below 1 is 1; a negative count is 0.
            start_index=1 if start is None else max(1, start),
            count=None if count is None else min(max(0, count), MAX_RESULTS),
        )


def _csv(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise QueryError(name, "must be a comma-separated string or a list of strings")
    names = [p.strip() for v in value for p in v.split(",") if p.strip()]
    if len(names) > MAX_ATTRIBUTE_NAMES:
        raise QueryError(name, f"names at most {MAX_ATTRIBUTE_NAMES} attributes")
    if any(len(n) > MAX_NAME_CHARS for n in names):
        raise QueryError(name, f"an attribute name is longer than {MAX_NAME_CHARS} characters")
    return names


def _text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise QueryError(name, "must be a string")


def _integer(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise QueryError(name, "must be an integer")


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2); Entra requires every one of these keys."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
