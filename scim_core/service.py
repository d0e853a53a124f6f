"""The SCIM service: one method per route, from a plain :class:`ScimRequest` to a
:class:`ScimResponse`. Knows nothing of Azure Functions (``function_app`` adapts) nor of Table
Storage (the :class:`~scim_core.store.Store` seam).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from scim_core import discovery
from scim_core.app_extension import settle
from scim_core.cursor import CursorCodec, Position, query_digest
from scim_core.errors import (
    InvalidValue,
    NotFound,
    NotImplemented_,
    PreconditionFailed,
    ScimError,
    TooMany,
)
from scim_core.http import (
    ScimRequest,
    ScimResponse,
    allow,
    error_response,
    json_response,
    parse_json,
)
from scim_core.indexes import (
    DEFAULT_INDEXED_ATTRIBUTES,
    IndexReadiness,
    change_stamp,
    index_keys,
    parse_indexed,
)
from scim_core.listing import MAX_SCAN_ROWS
from scim_core.messages import DEFAULT_COUNT, Query
from scim_core.outbox import ChangeRecord, Kind, Producer, rows_for
from scim_core.resource import Projection, etag_matches, read_input, version_of
from scim_core.schema import ENTERPRISE_USER_SCHEMA, ResourceType, default_resource_types
from scim_core.searches import Searches, parse_query
from scim_core.store import (
    CHANGE_INDEX,
    Member,
    MemberChange,
    Outbox,
    Store,
    Stored,
)

#: The ListResponse member of a change poll that lists resources deleted since its time.
DELETED = "urn:scimfunc:api:messages:1.0:Deleted"
#: Most members whose ``display`` one response resolves (a point read each, concurrent).
NAMED_MEMBERS = 1000
#: Members one response carries at most (a group's GET, or each group of a list page); a larger
#: group's members are paged with a cursor (``ScimService._member_page``).
MAX_MEMBERS_RETURNED = 10_000
#: Members read per storage request (a Table Storage response holds 1,000 rows: limit + 1).
MEMBER_PAGE = 999
#: Read-modify-write attempts of a PUT/PATCH without If-Match that keeps losing ETag races.
WRITE_ATTEMPTS = 10
_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_valid_id(value: str) -> bool:
    """Ids this service issues are UUIDs; anything with characters a Table key forbids can
    never name a resource, so it is a 404 without a storage round trip."""
    return bool(_ID.match(value))


class ScimService(Searches):
    """SCIM 2.0 over a :class:`Store`. ``handle`` routes any request below the SCIM base."""

    def __init__(
        self,
        store: Store,
        types: dict[str, ResourceType] | None = None,
        clock: Callable[[], str] = _now,
        *,
        max_scan_rows: int = MAX_SCAN_ROWS,
        indexed_attributes: str = DEFAULT_INDEXED_ATTRIBUTES,
        producers: Sequence[Producer] = (),
    ):
        self.store = store
        #: Outbox producers (scim_core/outbox.py): their rows go in each change's transaction.
        self.producers = list(producers)
        #: The SCIM event URIs the producers issue, for ServiceProviderConfig (RFC 9967 §3).
        self.event_uris: tuple[str, ...] = ()
        self.types = types or default_resource_types()
        self.clock = clock
        #: Operator-chosen indexes (``SCIM_INDEXED_ATTRIBUTES``): written with every user; used
        #: by the planner once built (:class:`~scim_core.indexes.IndexReadiness`).
        self.indexes = parse_indexed(indexed_attributes, self.types["User"])
        self.readiness = IndexReadiness(store, self.indexes)
        self._create_checked = False
        self._purged: dict[str, float] = {}  # rtype -> when this process last purged tombstones
        #: Rows one request may examine for a filter no index serves, or a sort (listing).
        self.max_scan_rows = max_scan_rows
        self._cursors: CursorCodec | None = None  # built on the first cursor request

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
            body = discovery.serve(self.types, head, rest, req.base_url, self.event_uris)
            return json_response(200, body)
        raise NotFound(f"no SCIM endpoint at {req.path!r}")

    _allow = staticmethod(allow)

    # --- collections --------------------------------------------------------------------------
    def collection(self, req: ScimRequest, rtype: ResourceType) -> ScimResponse:
        self._allow(req, "GET", "POST")
        if req.method == "POST":
            return self.create(req, rtype)
        query = parse_query(dict(req.query))
        return json_response(200, self.list_resources(rtype, query, req.base_url))

    # --- single resources ---------------------------------------------------------------------
    def resource(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        self._allow(req, "GET", "PUT", "PATCH", "DELETE")
        if not is_valid_id(rid):
            raise NotFound(f"{rtype.name} {rid!r} not found")
        if req.method == "DELETE":
            return self.delete(req, rtype, rid)
        if req.method == "GET":
            query = parse_query(dict(req.query))
            stored = self._get(rtype, rid)
            version = version_of(stored.etag)
            inm = req.headers.get("if-none-match")
            if inm and etag_matches(inm, version):
                return ScimResponse(304, b"", {"ETag": version})
            projection = Projection(rtype, query.attributes, query.excluded_attributes)
            headers = {"ETag": version}
            members = None
            if query.cursor is not None and rtype.name == "Group" and projection.wants_members():
                members, link = self._member_page(stored, query, req.base_url)
                if link:
                    headers["Link"] = link
            named = members is not None  # a member page: names (see render)
            body = self.render(
                rtype, stored, req.base_url, projection, members=members, names=named
            )
            return json_response(200, body, headers)
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
        keys: dict[str, str | None] = {
            unique: value.casefold() if isinstance(value, str) else None,
            "externalId": ext if isinstance(ext, str) else None,
        }
        if rtype.name == "User":
            keys.update(index_keys(self.indexes, rtype, doc))
        keys[CHANGE_INDEX] = change_stamp(doc)
        return keys

    def _check_members(self, members: list[Member] | tuple[Member, ...] | Any) -> None:
        for m in members:
            if not is_valid_id(m.value):
                raise InvalidValue(f"member {m.value!r} does not name a resource of this service")

    def create(self, req: ScimRequest, rtype: ResourceType) -> ScimResponse:
        doc, members = read_input(rtype, parse_json(req))
        doc = settle(rtype, req.app_write, None, doc)
        if members:
            self._check_members(members)
        if rtype.name == "User" and self.indexes and not self._create_checked:
            # Once per process, before its first user create: an instance without users marks
            # its indexes built now (nothing to reindex), so a new instance uses them at once.
            self._create_checked = True
            self.readiness.ready()
        now = self.clock()
        doc["id"] = str(uuid.uuid4())
        doc["meta"] = {"resourceType": rtype.name, "created": now, "lastModified": now}
        record = self._record(req, rtype, doc["id"], "create", None, doc)
        if members:
            record = replace(record, members=MemberChange(replace_all=members))
        stored = self.store.create(
            rtype.name, doc, self.keys(rtype, doc), members or (), self._rows(record)
        )
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
            record = self._record(req, rtype, rid, "put", stored.doc, new, change)
            return self.store.replace(
                rtype.name, new, self.keys(rtype, new), stored.etag, change, self._rows(record)
            )

        new = self._retry_unconditional(req, write)
        out = self.render(rtype, new, req.base_url, Projection(rtype))
        return json_response(200, out, {"ETag": version_of(new.etag)})

    def patch(self, req: ScimRequest, rtype: ResourceType, rid: str) -> ScimResponse:
        # Imported on the first PATCH: a cold start (Entra's Test Connection is a GET) skips it.
        from scim_core.patch import apply_patch

        body = parse_json(req)
        query = parse_query(dict(req.query))

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
            record = self._record(req, rtype, rid, "patch", stored.doc, doc, result.members)
            return self.store.replace(
                rtype.name,
                doc,
                self.keys(rtype, doc),
                stored.etag,
                result.members,
                self._rows(record),
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
        etag, before = None, None
        if req.headers.get("if-match"):
            stored = self._get(rtype, rid)
            self._check_if_match(req, stored)
            etag, before = stored.etag, stored.doc
        record = self._record(req, rtype, rid, "delete", before, None)
        try:
            self.store.delete(rtype.name, rid, etag, self._rows(record))
        except NotFound:
            raise NotFound(f"{rtype.name} {rid!r} not found") from None
        return ScimResponse(204, b"", {})

    # --- outbox -------------------------------------------------------------------------------
    @staticmethod
    def _record(
        req: ScimRequest,
        rtype: ResourceType,
        rid: str,
        kind: Kind,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        members: MemberChange | None = None,
    ) -> ChangeRecord:
        return ChangeRecord(
            rtype.name,
            rid,
            kind,
            before,
            after,
            origin="app" if req.app_write else "provisioning",
            members=members or MemberChange(),
            txn=req.txn or uuid.uuid4().hex,
        )

    def _rows(self, record: ChangeRecord) -> list[Outbox]:
        return rows_for(self.producers, record)

    # --- rendering ----------------------------------------------------------------------------
    def render(
        self,
        rtype: ResourceType,
        stored: Stored,
        base_url: str,
        projection: Projection,
        members: list[Member] | None = None,
        names: bool = False,
    ) -> dict[str, Any]:
        """The wire form of a stored resource, projected. Reads members / groups only when the
        projection returns them (``excludedAttributes=members`` never reads member rows).

        A user's ``groups`` carry each group's ``display`` (one point read of a small property
        per group, sent concurrently): an app needs no second lookup. ``names``: a group's
        members carry their ``display`` too: on the member pages an app reads
        (``GET /Groups/{id}?attributes=members&cursor=``, at most :data:`NAMED_MEMBERS` a page).
        Not on a plain GET or a write's response: Entra never reads member names, its member
        PATCHes must not pay a read per member, and a client that compares the members it
        wrote with those it reads back (scim2-tester does) sees what it wrote."""
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
                members = self._all_members(stored.id)
            if names and len(members) <= NAMED_MEMBERS:
                members = self._named(members)
            out["members"] = [self._member(m, base_url) for m in members]
        if rtype.name == "User" and projection.wants_groups():
            groups = self.store.groups_of(stored.id)
            known = self.store.display_names("Group", groups) if groups else {}
            out["groups"] = [
                {"value": g, "$ref": f"{base_url}/Groups/{g}", "type": "direct"}
                | ({"display": known[g]} if g in known else {})
                for g in groups
            ]
        return projection.apply(out)

    def _all_members(self, group_id: str) -> list[Member]:
        """A group's members for a response, read a storage page at a time; past
        :data:`MAX_MEMBERS_RETURNED` the response would hold too much: ``tooMany``, pointing to
        the member cursor (:meth:`_member_page`) and ``excludedAttributes=members``."""
        found: list[Member] = []
        after: str | None = None
        while True:
            page = self.store.list_members(group_id, limit=MEMBER_PAGE, after=after)
            found += page[:MEMBER_PAGE]
            if len(found) > MAX_MEMBERS_RETURNED:
                raise TooMany(
                    f"group {group_id} has more than {MAX_MEMBERS_RETURNED} members: page them "
                    f"with GET /Groups/{group_id}?attributes=members&cursor= (and the "
                    "Link rel=next of each answer), or leave them out with "
                    "excludedAttributes=members"
                )
            if len(page) <= MEMBER_PAGE:
                return found
            after = page[MEMBER_PAGE - 1].value

    def _member_page(
        self, stored: Stored, query: Query, base_url: str
    ) -> tuple[list[Member], str | None]:
        """One page of a group's members, by cursor: ``GET /Groups/{id}?attributes=members&
        cursor=[&count=n]``. RFC 9865 pages list responses, not a multi-valued attribute, so
        this applies its parameters to ``members`` and hands the next cursor in a ``Link``
        header (RFC 8288, rel ``next``): the body stays a plain Group. Each page is one range
        read of the membership rows after the last member returned."""
        count = min(DEFAULT_COUNT if query.count is None else query.count, MEMBER_PAGE)
        digest = query_digest("members", stored.id)
        codec = self._cursor_codec()
        at = Position(None, 0) if not query.cursor else codec.open(query.cursor, digest)
        page = self.store.list_members(stored.id, limit=count, after=at.after)
        members, more = page[:count], len(page) > count
        if not more or not members:
            return members, None
        cursor = codec.issue(digest, Position(members[-1].value, at.returned + len(members)))
        url = f"{base_url}/Groups/{stored.id}?attributes=members&count={count}&cursor={cursor}"
        return members, f'<{url}>; rel="next"'

    def _named(self, members: list[Member]) -> list[Member]:
        """``members`` with the ``display`` of each that has none stored (Entra sends none)."""
        names: dict[str, str] = {}
        for kind in ("User", "Group"):
            ids = [m.value for m in members if not m.display and m.type == kind]
            if ids:
                names.update(self.store.display_names(kind, ids))
        return [
            m if m.display or m.value not in names else replace(m, display=names[m.value])
            for m in members
        ]

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
