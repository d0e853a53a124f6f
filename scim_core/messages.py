"""Protocol messages (RFC 7644) as pydantic models: query parameters, SearchRequest,
ListResponse, BulkRequest/BulkResponse. Wire names are camelCase aliases."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"

#: Largest page the service returns (announced as ``filter.maxResults``).
MAX_RESULTS = 1000
#: Page size when the client gives no ``count``.
DEFAULT_COUNT = 100


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [p.strip() for v in value for p in v.split(",") if p.strip()]
    raise ValueError("must be a comma-separated string or a list of strings")


class Query(BaseModel):
    """A query: from GET query parameters (RFC 7644 §3.4.2) or a SearchRequest body (§3.4.3)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    attributes: list[str] = Field(default_factory=list)
    excluded_attributes: list[str] = Field(default_factory=list, alias="excludedAttributes")
    filter: str | None = None
    sort_by: str | None = Field(default=None, alias="sortBy")
    sort_order: str | None = Field(default=None, alias="sortOrder")
    start_index: int = Field(default=1, alias="startIndex")
    count: int | None = None

    @field_validator("attributes", "excluded_attributes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> list[str]:
        return _csv(value)

    @field_validator("start_index", mode="after")
    @classmethod
    def _start(cls, value: int) -> int:
        return max(1, value)  # RFC 7644 §3.4.2.4: a value less than 1 is interpreted as 1

    @field_validator("count", mode="after")
    @classmethod
    def _count(cls, value: int | None) -> int | None:
        return None if value is None else min(max(0, value), MAX_RESULTS)  # §3.4.2.4

    @field_validator("sort_order", mode="after")
    @classmethod
    def _order(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in ("ascending", "descending"):
            raise ValueError("sortOrder must be 'ascending' or 'descending'")
        return value.lower() if value else None


class BulkOperation(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    method: str
    path: str
    bulk_id: str | None = Field(default=None, alias="bulkId")
    version: str | None = None
    data: Any = None


class BulkRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    schemas: list[str] = Field(default_factory=lambda: [BULK_REQUEST])
    fail_on_errors: int | None = Field(default=None, alias="failOnErrors")
    operations: list[BulkOperation] = Field(alias="Operations")


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2); Entra requires every one of these keys."""
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
