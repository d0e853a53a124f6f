"""The SCIM service: one method per route, from a plain :class:`ScimRequest` to a
:class:`ScimResponse`. Knows nothing of Azure Functions (``function_app`` adapts) nor of Table
Storage (the :class:`~scim_core.store.Store` seam).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scim_core import discovery
from scim_core.app_extension import settle
from scim_core.errors import (
    BadRequest,
    InvalidFilter,
    InvalidSyntax,
    InvalidValue,
    NotFound,
    NotImplemented_,
    PreconditionFailed,
    ScimError,
)
from scim_core.filter import compiled, parse_filter
from scim_core.http import (
    ScimRequest,
    ScimResponse,
    allow,
    error_response,
    json_response,
    parse_json,
)
from scim_core.messages import DEFAULT_COUNT, Query, QueryError, list_response
from scim_core.query import find
from scim_core.resource import Projection, etag_matches, read_input, version_of
from scim_core.schema import ENTERPRISE_USER_SCHEMA, ResourceType, default_resource_types
from scim_core.store import Member, MemberChange, Store, Stored

#: Read-modify-write attempts of a PUT/PATCH without If-Match that keeps losing ETag races.
WRITE_ATTEMPTS = 10
_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_valid_id(value: str) -> bool:
    """Ids this service issues are UUIDs; anything with characters a Table key forbids can
    never name a resource, so it is a 404 without a storage round trip."""
    return bool(_ID.match(value))


def _query(params: dict[str, Any]) -> Query:
    try:
        return Query.parse(params)
    except QueryError as exc:
        raise BadRequest(
            f"invalid query parameter {exc.param!r}: {exc.message}", scim_type="invalidValue"
        ) from None


class ScimService:
    """SCIM 2.0 over a :class:`Store`. ``handle`` routes any request below the SCIM base."""

    def __init__(
        self,
        store: Store,
        types: dict[str, ResourceType] | None = None,
        clock: Callable[[], str] = _now,
    ):
        self.store = store
        self.types = types or default_resource_types()
        self.clock = clock

    # --- entry point --------------------------------------------------------------------------
    def handle(self, req: ScimRequest) -> ScimResponse:
        """``dispatch`` with SCIM errors rendered; no authentication (:mod:`scim_core.router`)."""
        try:
            return self.dispatch(req)
        except ScimError as err:
            return error_response(err)

    def dispatch(self, req: ScimRequest) -> ScimResponse:
        parts = [p for p in req.path.split("/") if p]
        if not parts:
            raise NotFound("no SCIM resource at the base URL")
        head, rest = parts[0].lower(), parts[1:]
        if head in ("users", "groups") and len(rest) <= 1:
            rtype = self.types["User" if head == "users" else "Group"]
            if rest and rest[0].lower() == ".search":
                return self.search(req, [rtype])
            return self.resource(req, rtype, rest[0]) if rest else self.collection(req, rtype)
        if head == ".search" and not rest:
            return self.search(req, list(self.types.values()))
        if head == "me":
            raise NotImplemented_(
                "/Me is not supported: requests are made by a provisioning "
                "client, not on behalf of a user (RFC 7644 §3.11)"
            )
        if head in ("serviceproviderconfig", "schemas", "resourcetypes"):
            self._allow(req, "GET")
            return json_response(200, discovery.serve(self.types, head, rest, req.base_url))
        raise NotFound(f"no SCIM endpoint at {req.path!r}")

    _allow = staticmethod(allow)

    # --- collections --------------------------------------------------------------------------
    def collection(self, req: ScimRequest, rtype: ResourceType) -> ScimResponse:
        self._allow(req, "GET", "POST")
        if req.method == "POST":
            return self.create(req, rtype)
        query = _query(dict(req.query))
        return json_response(200, self.list_resources(rtype, query, req.base_url))

    def search(self, req: ScimRequest, rtypes: list[ResourceType]) -> ScimResponse:
        self._allow(req, "POST")
        body = parse_json(req)
        if not isinstance(body, dict):
            raise InvalidSyntax("a SearchRequest must be a JSON object")
        query = _query(body)
        if len(rtypes) == 1:
            return json_response(200, self.list_resources(rtypes[0], query, req.base_url))
        # Root search (RFC 7644 §3.4.3): every resource type, the filter applied to each.
        found: list[tuple[ResourceType, Stored]] = []
        flt = self._parse_filter(query.filter)
        strict = self._root_strictness(flt, rtypes)
        for rtype in rtypes:
            found += [(rtype, s) for s in find(self.store, rtype, flt, strict=strict[rtype.name])]
        return json_response(200, self._page(found, query, req.base_url))

    def list_resources(self, rtype: ResourceType, query: Query, base_url: str) -> dict[str, Any]:
        flt = self._parse_filter(query.filter)
        found = [(rtype, s) for s in find(self.store, rtype, flt)]
        return self._page(found, query, base_url)

    @staticmethod
    def _root_strictness(flt: Any, rtypes: list[ResourceType]) -> dict[str, bool]:
        """A root search's filter may name attributes only some types define (RFC 7644
        §3.4.3): those types see them as unassigned. An attribute no type defines is still
        ``invalidFilter``."""
        strict: dict[str, bool] = {}
        first: InvalidFilter | None = None
        for rtype in rtypes:
            try:
                if flt is not None:
                    compiled(flt, rtype)
                strict[rtype.name] = True
            except InvalidFilter as exc:
                first = first or exc
                strict[rtype.name] = False
        if first is not None and not any(strict.values()):
            raise first
        return strict

    @staticmethod
    def _parse_filter(text: str | None) -> Any:
        if text is None or not text.strip():
            return None
        return parse_filter(text)

    def _page(
        self, found: list[tuple[ResourceType, Stored]], query: Query, base_url: str
    ) -> dict[str, Any]:
        if query.sort_by:
            from scim_core.sorting import sort_resources  # only sorted lists pay for it

            found = sort_resources(found, query.sort_by, query.sort_order == "descending")
        count = DEFAULT_COUNT if query.count is None else query.count
        page = found[query.start_index - 1 : query.start_index - 1 + count]
        rendered = [
            self.render(
                rt, s, base_url, Projection(rt, query.attributes, query.excluded_attributes)
            )
            for rt, s in page
        ]
        return list_response(rendered, len(found), query.start_index)

    # --- single resources ---------------------------------------------------------------------
    def resource(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        self._allow(req, "GET", "PUT", "PATCH", "DELETE")
        if not is_valid_id(rid):
            raise NotFound(f"{rtype.name} {rid!r} not found")
        if req.method == "DELETE":
            return self.delete(req, rtype, rid)
        if req.method == "GET":
            query = _query(dict(req.query))
            stored = self._get(rtype, rid)
            version = version_of(stored.etag)
            inm = req.headers.get("if-none-match")
            if inm and etag_matches(inm, version):
                return ScimResponse(304, b"", {"ETag": version})
            projection = Projection(rtype, query.attributes, query.excluded_attributes)
            body = self.render(rtype, stored, req.base_url, projection)
            return json_response(200, body, {"ETag": version})
        if req.method == "PUT":
            return self.replace(req, rtype, rid)
        return self.patch(req, rtype, rid)

    def _get(self, rtype: ResourceType, rid: str) -> Stored:
        try:
            return self.store.get(rtype.name, rid)
        except NotFound:
            raise NotFound(f"{rtype.name} {rid!r} not found") from None

    @staticmethod
    def _check_if_match(req: ScimRequest, stored: Stored) -> None:
        header = req.headers.get("if-match")
        if header and not etag_matches(header, version_of(stored.etag)):
            raise PreconditionFailed(
                f"If-Match {header} does not match the current version {version_of(stored.etag)}"
            )

    def keys(self, rtype: ResourceType, doc: dict[str, Any]) -> dict[str, str | None]:
        """Index keys of a document; unique names are case-insensitive (casefolded)."""
        unique = "userName" if rtype.name == "User" else "displayName"
        value = doc.get(unique)
        ext = doc.get("externalId")
        return {
            unique: value.casefold() if isinstance(value, str) else None,
            "externalId": ext if isinstance(ext, str) else None,
        }

    def _check_members(self, members: list[Member] | tuple[Member, ...] | Any) -> None:
        for m in members:
            if not is_valid_id(m.value):
                raise InvalidValue(f"member {m.value!r} does not name a resource of this service")

    def create(self, req: ScimRequest, rtype: ResourceType) -> ScimResponse:
        doc, members = read_input(rtype, parse_json(req))
        doc = settle(rtype, req.app_write, None, doc)
        if members:
            self._check_members(members)
        now = self.clock()
        doc["id"] = str(uuid.uuid4())
        doc["meta"] = {"resourceType": rtype.name, "created": now, "lastModified": now}
        stored = self.store.create(rtype.name, doc, self.keys(rtype, doc), members or ())
        body = self.render(rtype, stored, req.base_url, Projection(rtype), members=members or [])
        return json_response(
            201, body, {"ETag": version_of(stored.etag), "Location": body["meta"]["location"]}
        )

    def replace(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        body = parse_json(req)
        doc, members = read_input(rtype, body)
        change = MemberChange()
        if members is not None:
            self._check_members(members)
            change = MemberChange(replace_all=members)

        def write() -> Stored:
            stored = self._get(rtype, rid)
            self._check_if_match(req, stored)
            doc["id"] = rid
            doc["meta"] = {**stored.doc.get("meta", {}), "lastModified": self.clock()}
            for ext in rtype.server_maintained_extensions():
                # readOnly data is the server's (RFC 7643 §2.2): a PUT cannot clear it.
                if ext.id in stored.doc:
                    doc[ext.id] = stored.doc[ext.id]
            new = settle(rtype, req.app_write, stored.doc, doc, replace=True)
            # RFC 7644 §3.5.1: PUT leaves out what the client omits. Membership is the exception:
            # a PUT without "members" keeps them, so a client that never reads members back
            # (Entra) cannot wipe a 100k-member group by accident.
            return self.store.replace(rtype.name, new, self.keys(rtype, new), stored.etag, change)

        new = self._retry_unconditional(req, write)
        out = self.render(rtype, new, req.base_url, Projection(rtype))
        return json_response(200, out, {"ETag": version_of(new.etag)})

    def patch(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        # Imported on the first PATCH: a cold start (Entra's Test Connection is a GET) skips it.
        from scim_core.patch import apply_patch

        body = parse_json(req)
        query = _query(dict(req.query))

        def write() -> Stored:
            stored = self._get(rtype, rid)
            self._check_if_match(req, stored)
            result = apply_patch(rtype, stored.doc, body)
            if not result.changed:
                return stored
            doc = result.doc
            if rtype.name == "User" and not doc.get("userName"):
                raise InvalidValue("'userName' is required and cannot be removed")
            if rtype.name == "Group" and not doc.get("displayName"):
                raise InvalidValue("'displayName' is required and cannot be removed")
            for m in (*result.members.add, *(result.members.replace_all or ())):
                self._check_members([m])
            doc["id"] = rid
            doc["meta"] = {**stored.doc.get("meta", {}), "lastModified": self.clock()}
            doc = settle(rtype, req.app_write, stored.doc, doc)
            return self.store.replace(
                rtype.name, doc, self.keys(rtype, doc), stored.etag, result.members
            )

        new = self._retry_unconditional(req, write)
        headers = {"ETag": version_of(new.etag)}
        projection = Projection(rtype, query.attributes, query.excluded_attributes)
        if rtype.name == "Group" and new.members is None and not query.attributes:
            # RFC 7644 §3.5.2: 200 with the resource (strict probes require it; Entra accepts any
            # 2xx). The store hands back the members of a small group with the write, at no
            # extra request; listing a 100k-member group after every Entra member PATCH would
            # make it O(group size), so a larger group is returned without them (GET them, or
            # ask with ``attributes=members``).
            projection = Projection(
                rtype, query.attributes, [*query.excluded_attributes, "members"]
            )
        body = self.render(rtype, new, req.base_url, projection)
        return json_response(200, body, headers)

    @staticmethod
    def _retry_unconditional(req: ScimRequest, write: Callable[[], Stored]) -> Stored:
        """Run a read-modify-write. Without If-Match, losing the store's ETag race to a concurrent
        write of the same resource is not the client's 412 (RFC 9110 §13.1.1: 412 answers a
        precondition the client sent): read again and re-apply. A client that sends member
        PATCHes of one group in parallel must not see them fail (ENTRA.md: never fail requests
        that could succeed)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return write()
            except PreconditionFailed:
                if req.headers.get("if-match") or attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def delete(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        etag = None
        if req.headers.get("if-match"):
            stored = self._get(rtype, rid)
            self._check_if_match(req, stored)
            etag = stored.etag
        try:
            self.store.delete(rtype.name, rid, etag)
        except NotFound:
            raise NotFound(f"{rtype.name} {rid!r} not found") from None
        return ScimResponse(204, b"", {})

    # --- rendering ----------------------------------------------------------------------------
    def render(
        self,
        rtype: ResourceType,
        stored: Stored,
        base_url: str,
        projection: Projection,
        members: list[Member] | None = None,
    ) -> dict[str, Any]:
        """The wire form of a stored resource, projected. Reads members / groups only when the
        projection returns them (``excludedAttributes=members`` never reads member rows)."""
        doc = stored.doc
        out: dict[str, Any] = {"schemas": [rtype.core.id]}
        kept = {s.id for s in rtype.server_maintained_extensions()}
        out["schemas"] += [
            s.id for s, _ in rtype.extensions if s.id in doc and (doc[s.id] or s.id in kept)
        ]
        out.update(doc)
        endpoint = rtype.endpoint
        out["meta"] = {
            **doc.get("meta", {}),
            "resourceType": rtype.name,
            "location": f"{base_url}{endpoint}/{stored.id}",
            "version": version_of(stored.etag),
        }
        manager = doc.get(ENTERPRISE_USER_SCHEMA, {}).get("manager")
        if isinstance(manager, dict) and manager.get("value"):
            out[ENTERPRISE_USER_SCHEMA] = {
                **doc[ENTERPRISE_USER_SCHEMA],
                "manager": {**manager, "$ref": f"{base_url}/Users/{manager['value']}"},
            }
        if rtype.name == "Group" and projection.wants_members():
            if members is None:
                members = stored.members
            if members is None:
                members = self.store.list_members(stored.id)
            out["members"] = [self._member(m, base_url) for m in members]
        if rtype.name == "User" and projection.wants_groups():
            out["groups"] = [
                {"value": g, "$ref": f"{base_url}/Groups/{g}", "type": "direct"}
                for g in self.store.groups_of(stored.id)
            ]
        return projection.apply(out)

    @staticmethod
    def _member(m: Member, base_url: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "value": m.value,
            "$ref": f"{base_url}/{m.type}s/{m.value}",
            "type": m.type,
        }
        if m.display:
            item["display"] = m.display
        return item


__all__ = ["ScimService", "is_valid_id"]
