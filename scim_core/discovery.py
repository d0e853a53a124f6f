"""Discovery endpoints (RFC 7644 §4): ``/ServiceProviderConfig``, ``/Schemas``,
``/ResourceTypes``. They announce exactly what this service implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scim_core.cursor import CURSOR_TIMEOUT
from scim_core.errors import NotFound
from scim_core.messages import DEFAULT_COUNT, MAX_RESULTS, list_response
from scim_core.schema import ResourceType, published_schemas

#: Bulk limits announced and enforced (RFC 7644 §3.7.4).
BULK_MAX_OPERATIONS = 1000
BULK_MAX_PAYLOAD = 1_048_576


def service_provider_config(base_url: str, event_uris: Sequence[str] = ()) -> dict[str, Any]:
    config: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": BULK_MAX_OPERATIONS,
            "maxPayloadSize": BULK_MAX_PAYLOAD,
        },
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        # RFC 9865 (Service Provider Configuration): both methods; index stays the default,
        # as RFC 7644 clients (Entra) expect when they send no cursor.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_RESULTS,
            "cursorTimeout": CURSOR_TIMEOUT,
        },
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A static secret token or an OAuth 2.0 bearer JWT in the "
                "Authorization header.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }
    if event_uris:
        # RFC 9967 §3 (ServiceProviderConfig): the SCIM events this service issues, and no
        # asynchronous requests (RFC 9967 §2.5's Prefer: respond-async is not implemented).
        config["securityEvents"] = {"eventUris": list(event_uris), "asyncRequest": "none"}
    return config


def serve(
    types: dict[str, ResourceType],
    head: str,
    rest: list[str],
    base_url: str,
    event_uris: Sequence[str] = (),
) -> dict[str, Any]:
    """The body for ``GET /<head>[/<id>]`` (``head`` lower-case)."""
    if head == "serviceproviderconfig":
        if rest:
            raise NotFound("ServiceProviderConfig has no sub-resources")
        return service_provider_config(base_url, event_uris)
    if head == "schemas":
        schemas = {s.id.lower(): s.to_resource(base_url) for s in published_schemas(types)}
        return _one_or_all(schemas, rest, "Schema")
    resource_types = {rt.name.lower(): rt.to_resource(base_url) for rt in types.values()}
    return _one_or_all(resource_types, rest, "ResourceType")


def _one_or_all(items: dict[str, dict[str, Any]], rest: list[str], what: str) -> dict[str, Any]:
    if not rest:
        resources = list(items.values())
        return list_response(resources, len(resources), 1)
    key = "/".join(rest).lower()
    if key not in items or len(rest) > 1 and ":" not in key:
        raise NotFound(f"{what} {'/'.join(rest)!r} not found")
    return items[key]
