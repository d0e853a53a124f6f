"""Listing and searching (RFC 7644 §3.4.2, §3.4.3): the part of :class:`ScimService` that answers
``GET`` on a collection and ``POST .search``: index or cursor pages (:mod:`scim_core.listing`,
RFC 9865), change polls with their tombstones, and the bounds on what a scan may read.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_core.cursor import CursorCodec, Position, load_key, query_digest
from scim_core.errors import BadRequest, InvalidCursor, InvalidFilter, InvalidSyntax, TooMany
from scim_core.filter import compiled, parse_filter
from scim_core.http import ScimRequest, ScimResponse, allow, json_response, parse_json
from scim_core.indexes import IndexReadiness, OperatorIndex
from scim_core.listing import Listed, list_page, sorted_matches
from scim_core.messages import DEFAULT_COUNT, Query, QueryError, list_response
from scim_core.query import Plan, change_term, conjuncts, find, plan, wanted_indexes
from scim_core.resource import Projection
from scim_core.schema import ResourceType
from scim_core.store import TOMBSTONE_DAYS, Member, Store, Stored, stamp

#: The ListResponse member of a change poll that lists resources deleted since its time.
DELETED = "urn:scimfunc:api:messages:1.0:Deleted"


def parse_query(params: dict[str, Any]) -> Query:
    try:
        return Query.parse(params)
    except QueryError as exc:
        raise BadRequest(
            f"invalid query parameter {exc.param!r}: {exc.message}", scim_type="invalidValue"
        ) from None


class Searches:
    """Collections and searches over :attr:`store`; :class:`~scim_core.service.ScimService`
    adds single resources and rendering."""

    store: Store
    types: dict[str, ResourceType]
    indexes: tuple[OperatorIndex, ...]
    readiness: IndexReadiness
    max_scan_rows: int
    _purged: dict[str, float]
    _cursors: CursorCodec | None

    def render(
        self,
        rtype: ResourceType,
        stored: Stored,
        base_url: str,
        projection: Projection,
        members: list[Member] | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    _allow = staticmethod(allow)

    def search(self, req: ScimRequest, rtypes: list[ResourceType]) -> ScimResponse:
        self._allow(req, "POST")
        body = parse_json(req)
        if not isinstance(body, dict):
            raise InvalidSyntax("a SearchRequest must be a JSON object")
        query = parse_query(body)
        if len(rtypes) == 1:
            return json_response(200, self.list_resources(rtypes[0], query, req.base_url))
        # Root search (RFC 7644 §3.4.3): every resource type, the filter applied to each.
        found: list[tuple[ResourceType, Stored]] = []
        flt = self._parse_filter(query.filter)
        strict = self._root_strictness(flt, rtypes)
        if query.cursor is not None:
            raise BadRequest(
                "cursor pagination is per resource type: search /Users or /Groups",
                scim_type="invalidValue",
            )
        for rtype in rtypes:
            indexes = self._ready_indexes(rtype, flt)
            for s in find(self.store, rtype, flt, strict=strict[rtype.name], indexes=indexes):
                found.append((rtype, s))
                if len(found) > self.max_scan_rows:  # bounded memory (scim_core.listing)
                    raise TooMany(
                        f"a root search returns at most {self.max_scan_rows} resources in all: "
                        "search /Users or /Groups with a narrower filter"
                    )
        return json_response(200, self._page(found, query, req.base_url))

    def list_resources(self, rtype: ResourceType, query: Query, base_url: str) -> dict[str, Any]:
        """One page of a type's resources (:mod:`scim_core.listing`).

        ``totalResults`` (RFC 7644 §3.4.2, REQUIRED with index pagination) is exact when the
        request saw every result (a filter an index serves, a sorted query, the last page);
        a page that stops early does not count the rest (that would read the whole partition)
        and says ``startIndex - 1 + itemsPerPage + 1``: a lower bound that is always past the
        page, so a client looping ``while startIndex <= totalResults`` visits every page and
        stops after the last. With a cursor, ``totalResults`` is given only when it is exact:
        on the last page, the number of resources the walk returned (README "Paging")."""
        flt = self._parse_filter(query.filter)
        chosen = plan(
            rtype,
            flt,
            indexes=self._ready_indexes(rtype, flt),
            changes=self._changes_ready(rtype, flt),
        )
        if chosen.walk is not None:
            self._purge_tombstones(rtype)
        count = DEFAULT_COUNT if query.count is None else query.count
        if query.cursor is not None:
            return self._cursor_page(rtype, query, chosen, count, base_url)
        skip = query.start_index - 1
        if query.sort_by:
            found = self._sorted(rtype, query, chosen)
            page = found[skip : skip + count]
            return self._render_page(page, len(found), query, base_url, rtype)
        listed = list_page(
            self.store, rtype, chosen, skip=skip, count=count, max_rows=self.max_scan_rows
        )
        total = listed.total
        if total is None:
            total = skip + len(listed.items) + len(listed.deleted) + 1
        body = self._render_page(listed.items, total, query, base_url, rtype)
        return self._with_deleted(body, chosen, listed, rtype)

    @staticmethod
    def _with_deleted(
        body: dict[str, Any], chosen: Plan, listed: Listed, rtype: ResourceType
    ) -> dict[str, Any]:
        """A change poll (``meta.lastModified gt|ge``) also lists the resources deleted since
        then, from their tombstones, under :data:`DELETED` (an extension of the ListResponse
        this service defines; README "Change poll"): a mirror applies them with the page."""
        if chosen.walk is not None:
            body["schemas"] = [*body["schemas"], DELETED]
            body[DELETED] = [
                {"id": c.id, "resourceType": rtype.name, "deleted": c.stamp} for c in listed.deleted
            ]
        return body

    def _cursor_page(
        self, rtype: ResourceType, query: Query, chosen: Plan, count: int, base_url: str
    ) -> dict[str, Any]:
        """RFC 9865: ``cursor`` empty for the first page, else a ``nextCursor`` this service
        issued for the same query. Without ``sortBy`` a cursor holds the position of the last
        row the page examined, so a walk returns every resource that exists throughout it
        exactly once, whatever is created or deleted meanwhile (a page seeks past that
        position: nothing before it is read again). With ``sortBy`` the order is computed per
        request and the cursor holds an offset into it (RFC 9865 asks for a stable order, which
        a concurrent change can shift)."""
        digest = query_digest(
            rtype.name, query.filter, query.sort_by, query.sort_order, chosen.name
        )
        codec = self._cursor_codec()
        at = Position(None, 0) if not query.cursor else codec.open(query.cursor, digest)
        if query.sort_by:
            found = self._sorted(rtype, query, chosen)
            try:
                offset = int(at.after or 0)
            except ValueError:
                raise InvalidCursor("the cursor is not one this service issued") from None
            items = found[offset : offset + count]
            end = offset + len(items)
            listed = Listed(items, str(end) if end < len(found) else None, len(found))
        else:
            listed = list_page(
                self.store,
                rtype,
                chosen,
                after=at.after,
                count=count,
                cursor=True,
                max_rows=self.max_scan_rows,
            )
        returned = at.returned + len(listed.items) + len(listed.deleted)
        body = self._render_page(listed.items, None, query, base_url, rtype)
        body = self._with_deleted(body, chosen, listed, rtype)
        if listed.next_after is not None and count > 0:
            body["nextCursor"] = codec.issue(digest, Position(listed.next_after, returned))
        else:
            body["totalResults"] = returned if not query.sort_by else listed.total
        return body

    def _ready_indexes(self, rtype: ResourceType, flt: Any) -> tuple[OperatorIndex, ...]:
        # Checking readiness reads state (once per process): only for a filter that could use
        # an operator index, never for Entra's userName/externalId/id queries.
        return self.readiness.ready() if wanted_indexes(rtype, flt, self.indexes) else ()

    def _changes_ready(self, rtype: ResourceType, flt: Any) -> bool:
        if flt is None or not any(change_term(rtype, t) for t in conjuncts(flt)):
            return False
        return self.readiness.changes_ready()

    def _purge_tombstones(self, rtype: ResourceType) -> None:
        """Tombstones older than TOMBSTONE_DAYS go, at most hourly per process, on a poll (the
        only reader of tombstones): one key-only read of the old ones and their deletes."""
        now = time.monotonic()
        if now - self._purged.get(rtype.name, -1e18) < 3600:
            return
        self._purged[rtype.name] = now
        cutoff = datetime.now(UTC) - timedelta(days=TOMBSTONE_DAYS)
        self.store.purge_tombstones(rtype.name, stamp(cutoff))

    def _cursor_codec(self) -> CursorCodec:
        if self._cursors is None:
            self._cursors = CursorCodec(load_key(self.store))
        return self._cursors

    def _sorted(self, rtype: ResourceType, query: Query, chosen: Plan) -> list[Stored]:
        from scim_core.sorting import sort_resources  # only sorted lists pay for it

        assert query.sort_by is not None
        matches = sorted_matches(self.store, rtype, chosen, True, self.max_scan_rows)
        found = [(rtype, s) for s in matches]
        ordered = sort_resources(found, query.sort_by, query.sort_order == "descending")
        return [s for _, s in ordered]

    def _render_page(
        self,
        items: list[Stored],
        total: int | None,
        query: Query,
        base_url: str,
        rtype: ResourceType,
    ) -> dict[str, Any]:
        projection = Projection(rtype, query.attributes, query.excluded_attributes)
        rendered = [self.render(rtype, s, base_url, projection) for s in items]
        body = list_response(rendered, total or 0, query.start_index)
        if query.cursor is not None:
            # RFC 9865: a cursor page has no startIndex, and totalResults only when known.
            del body["startIndex"], body["totalResults"]
        return body

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
