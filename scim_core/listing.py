"""One page of a list or filter request, read in O(page) where storage allows it.

The resources of a query come in a *plan order* (:func:`scim_core.query.plan`):

- no filter: the store's scan order (Table Storage: RowKey order). A page is one range read of
  ``count + 1`` documents starting after a position, so its cost does not depend on the
  partition's size.
- a filter an index answers: the candidate ids of the index (key-only rows), in id order; the
  page reads the documents of the candidates it returns (and of those the other ``and``-ed
  terms reject).
- any other filter: the scan order, filtered in memory page by page (1,000 documents a
  request); at most :data:`MAX_SCAN_ROWS` rows are examined per request.

Index pagination (RFC 7644 §3.4.2.4, ``startIndex``) has no offset to seek to in Table Storage:
the ``startIndex - 1`` rows before the page are stepped over. Without a filter they are read
key-only (:meth:`Store.positions`: 1,000 RowKeys per request, no document), so a page at
``startIndex`` costs ``ceil((startIndex - 1) / 1000)`` small requests plus one for the page; a
scan filter steps over matching documents and counts against :data:`MAX_SCAN_ROWS`. Cursor
pagination (RFC 9865) seeks: every page is O(page) at any depth.

Bounded memory: no request holds more than one page of documents plus one storage response
(1,000 rows). A request that would have to examine more than :data:`MAX_SCAN_ROWS` rows answers
400 ``tooMany`` (RFC 7644 §3.4.2.2 / §3.12) when it cannot stop early; a cursor page stops
early instead, returning what it found with a ``nextCursor`` after the last row it examined
(RFC 9865 lets a page hold fewer than ``count`` resources), so a cursor walk of any filter
always completes. ``sortBy`` orders the whole result, so it needs every match in memory: bounded
the same way (more than :data:`MAX_SCAN_ROWS` candidates: ``tooMany``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from scim_core.errors import NotFound, TooMany
from scim_core.query import Plan, holds
from scim_core.schema import ResourceType
from scim_core.store import Change, Store, Stored

#: Rows one request may examine to answer a filter no index serves, or to sort (the documented
#: bound on a request's work and memory; README "Paging").
MAX_SCAN_ROWS = 10_000
#: Rows of one storage response.
STORAGE_PAGE = 1000


@dataclass
class Listed:
    """A page: ``items`` in plan order; ``next_after`` the position the next page starts after
    (None: no more results); ``total`` the number of results of the whole query when this request
    saw all of them (None: it stopped early, the total is unknown); ``skipped`` how many results
    were stepped over before the page."""

    items: list[Stored]
    next_after: str | None
    total: int | None
    skipped: int = 0
    #: A change poll's tombstones in this page (resources deleted since its time).
    deleted: list[Change] = field(default_factory=list)


def list_page(
    store: Store,
    rtype: ResourceType,
    plan: Plan,
    *,
    strict: bool = True,
    after: str | None = None,
    skip: int = 0,
    count: int,
    cursor: bool = False,
    max_rows: int = MAX_SCAN_ROWS,
) -> Listed:
    """The ``count`` results after position ``after`` and ``skip`` further results. ``cursor``:
    the caller can resume from any position, so a page may end early (see module docstring)."""
    skipped = 0
    if plan.lookup is None and plan.walk is None and not plan.rest and skip:
        # No filter: step over the skipped rows key-only, then read the page.
        for position in store.positions(rtype.name, after):
            after = position
            skipped += 1
            if skipped == skip:
                break
        if skipped < skip:
            return Listed([], None, skipped, skipped)
    if plan.lookup is not None and not plan.rest and skip:
        # An index with no other terms: its ids are the results, skipped without any read.
        ids = _ids_after(store, plan, after)
        skipped = min(skip, len(ids))
        if skipped:
            after = ids[skipped - 1]
    items: list[Stored] = []
    deleted: list[Change] = []
    # A cursor page of a whole storage response (count 1,000, no filter) does not probe for
    # one more row (a second request): its nextCursor may lead to an empty last page.
    probe_ends = cursor and count >= STORAGE_PAGE and plan.lookup is None and plan.walk is None
    probe_ends = probe_ends and not plan.rest
    last: str | None = after
    rows = _examine(store, rtype, plan, strict, after, count)
    for examined, (position, found) in enumerate(rows, 1):
        if found is not None:
            if skipped < skip:
                skipped += 1
            elif len(items) + len(deleted) < count:
                if isinstance(found, Change):
                    deleted.append(found)
                else:
                    items.append(found)
                if probe_ends and len(items) == count:
                    return Listed(items, position, None, skipped, deleted)
            else:  # one result past the page: there is a next page, starting with it
                return Listed(items, last, None, skipped, deleted)
        last = position
        if examined >= max_rows:
            if cursor or len(items) + len(deleted) == count:
                # A cursor resumes from here; a full page's total is a lower bound anyway.
                return Listed(items, last, None, skipped, deleted)
            raise TooMany(
                f"answering this filter means examining more than {max_rows} resources: use "
                "a filter on an indexed attribute (README, 'Indexes'), or cursor pagination "
                "(RFC 9865), which returns what one request can examine and a nextCursor"
            )
    return Listed(items, None, skipped + len(items) + len(deleted), skipped, deleted)


def sorted_matches(
    store: Store, rtype: ResourceType, plan: Plan, strict: bool, max_rows: int = MAX_SCAN_ROWS
) -> list[Stored]:
    """Every result of the plan, for ``sortBy`` (which needs them all): at most ``max_rows``
    rows examined, else ``tooMany``."""
    found: list[Stored] = []
    for examined, (_, stored) in enumerate(_examine(store, rtype, plan, strict, None, None), 1):
        if examined > max_rows:
            raise TooMany(
                f"sortBy orders every result, and this query has more than {max_rows} "
                "candidates: narrow the filter, or page without sortBy"
            )
        if isinstance(stored, Stored):  # a sorted poll lists live resources only
            found.append(stored)
    return found


def _examine(
    store: Store,
    rtype: ResourceType,
    plan: Plan,
    strict: bool,
    after: str | None,
    count: int | None,
) -> Iterator[tuple[str, Stored | Change | None]]:
    """Every row the plan examines after ``after``, in plan order: its position, and the
    resource when it is a result (None when the filter rejects it; a tombstone's
    :class:`Change` in a change walk)."""
    if plan.walk is not None:
        # A poll without further terms needs count + 1 changes: ask storage for no more.
        size = min(count + 1, STORAGE_PAGE) if not plan.rest and count is not None else None
        for change in plan.walk(store, after, size):
            if change.deleted:
                yield change.position, change
                continue
            try:
                stored = store.get(rtype.name, change.id)
            except NotFound:
                # Deleted since the index row was read: its tombstone comes later in the walk.
                yield change.position, None
                continue
            yield change.position, stored if holds(store, rtype, stored, plan, strict) else None
        return
    if plan.lookup is None:
        # No filter: a page needs count + 1 documents, so ask storage for no more than that.
        size = min(count + 1, STORAGE_PAGE) if not plan.rest and count is not None else None
        for stored in store.scan(rtype.name, after, size):
            yield stored.position, stored if holds(store, rtype, stored, plan, strict) else None
        return
    for rid in _ids_after(store, plan, after):
        try:
            stored = store.get(rtype.name, rid)
        except NotFound:
            continue  # an index row whose resource went away between reads
        yield rid, stored if holds(store, rtype, stored, plan, strict) else None


def _ids_after(store: Store, plan: Plan, after: str | None) -> list[str]:
    assert plan.lookup is not None
    ids = sorted(set(plan.lookup(store)))
    return ids[bisect.bisect_right(ids, after) :] if after is not None else ids
