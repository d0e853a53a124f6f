"""Query planning: turn a parsed filter into point reads where Entra's shapes allow it.

Every query Entra sends is answered without a scan (DESIGN.md "Storage design"):
``id eq``, ``userName eq`` (case-insensitive), ``externalId eq``, group ``displayName eq``,
``members eq`` / ``members[value eq ..]`` (reverse membership rows), and any ``and`` of those
with other terms (the other terms are evaluated on the few candidates; a ``members`` term on a
known group is a single membership point read). Anything else scans the resource type's
partition and evaluates the filter in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_core.errors import NotFound
from scim_core.filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    Or,
    Present,
    ValuePath,
    compiled,
    matches,
    parse_datetime,
)
from scim_core.indexes import OperatorIndex, path_key
from scim_core.schema import ResourceType
from scim_core.store import Change, Store, Stored, stamp


def conjuncts(f: Filter) -> list[Filter]:
    """The terms of a top-level ``and`` chain."""
    if isinstance(f, And):
        return conjuncts(f.left) + conjuncts(f.right)
    return [f]


def _core_name(rtype: ResourceType, path: AttrPath) -> str | None:
    """The lower-case core attribute name a path names (None for extension paths)."""
    if path.urn is not None:
        urn, _ = rtype.split_urn(path.urn + ":" + path.name)
        if urn is not None:
            return None
    return path.name.lower()


def _eq_string(term: Filter) -> tuple[AttrPath, str] | None:
    """The path and operand of an ``eq`` on a string, as the matcher compares it: a bare number
    compared with a string attribute by its source text (``externalId eq 1.50`` is "1.50")."""
    if not (isinstance(term, Compare) and term.op == "eq") or term.value is None:
        return None
    if isinstance(term.value, bool):
        return None
    if isinstance(term.value, str):
        return term.path, term.value
    return term.path, term.raw if term.raw is not None else json.dumps(term.value)


def member_id(rtype: ResourceType, term: Filter) -> str | None:
    """The member id a ``members eq "u"`` / ``members.value eq`` / ``members[value eq "u"]``
    term tests for, or None if the term is not of that shape."""
    if rtype.name != "Group":
        return None
    if isinstance(term, ValuePath) and _core_name(rtype, term.path) == "members":
        inner = _eq_string(term.filter)
        if inner and inner[0].name.lower() == "value" and inner[0].sub is None:
            return inner[1]
        return None
    eq = _eq_string(term)
    if eq and _core_name(rtype, eq[0]) == "members" and (eq[0].sub or "value").lower() == "value":
        return eq[1]
    return None


#: The built-in indexed string attributes of each resource type, cheapest first, by the
#: attribute's planner key (:func:`scim_core.indexes.path_key`), with how the index normalises a
#: value (as the service keys it: ``ScimService.keys``). Operator-chosen indexes
#: (:mod:`scim_core.indexes`) join this table in :func:`index_table`: one table for ranking and
#: lookup, so the planner can never rank an index that the lookup does not have.
IndexEntry = tuple[int, str, Callable[[str], str]]
_INDEXES: dict[str, dict[str, IndexEntry]] = {
    "User": {
        "|id|": (0, "id", str),
        "|username|": (1, "userName", str.casefold),
        "|externalid|": (2, "externalId", str),
    },
    "Group": {
        "|id|": (0, "id", str),
        "|displayname|": (1, "displayName", str.casefold),
        "|externalid|": (2, "externalId", str),
    },
}
_OPERATOR_RANK = 2
_MEMBERSHIP_RANK = 3
_NO_INDEX = 9


def index_table(
    rtype: ResourceType, indexes: Sequence[OperatorIndex] = ()
) -> dict[str, IndexEntry]:
    """The indexes of ``rtype`` the planner may use: the built-in ones and, for users, the
    operator-chosen ``indexes`` (those the instance has built)."""
    table = dict(_INDEXES[rtype.name])
    if rtype.name == "User":
        for index in indexes:
            table.setdefault(index.key, (_OPERATOR_RANK, index.name, index.normalise))
    return table


def _index(
    rtype: ResourceType, term: Filter, table: Mapping[str, IndexEntry]
) -> tuple[int, str, Callable[[Store], list[str]]] | None:
    """How one term can be answered from an index: its rank (cheapest first), the index name
    and the lookup of candidate ids; None if no index answers it."""
    mid = member_id(rtype, term)
    if mid is not None:
        return _MEMBERSHIP_RANK, "members", lambda store: store.groups_of(mid)
    eq = _eq_string(term)
    if eq is None:
        return None
    found = table.get(path_key(rtype, eq[0]) or "")
    if found is None:
        return None
    rank, index, normalise = found
    value = normalise(eq[1])
    if index == "id":
        return rank, index, lambda store: [value]
    return rank, index, lambda store: store.lookup(rtype.name, index, value)


_LAST_MODIFIED = "|meta|lastmodified"


def change_term(rtype: ResourceType, term: Filter) -> tuple[str, bool, Filter] | None:
    """For ``meta.lastModified gt|ge "T"``: the stamp of T, whether T itself is excluded
    (``gt``), and the term; else None."""
    if not (isinstance(term, Compare) and term.op in ("gt", "ge")):
        return None
    if path_key(rtype, term.path) != _LAST_MODIFIED:
        return None
    when = parse_datetime(term.value)
    return None if when is None else (stamp(when), term.op == "gt", term)


def _walk_changes(
    rtype: ResourceType, since: str, exclusive: bool
) -> Callable[[Store, str | None, int | None], Iterator[Change]]:
    def walk(store: Store, after: str | None, page_size: int | None = None) -> Iterator[Change]:
        for change in store.changes(rtype.name, since, after, page_size):
            if not (exclusive and change.stamp == since):
                yield change

    return walk


def wanted_indexes(
    rtype: ResourceType, f: Filter | None, indexes: Sequence[OperatorIndex]
) -> list[OperatorIndex]:
    """The operator-chosen indexes an ``eq`` term of ``f``'s top-level ``and`` names: only a
    filter that could use one pays for finding out which are built."""
    if f is None or rtype.name != "User" or not indexes:
        return []
    keys = {path_key(rtype, eq[0]) for t in conjuncts(f) if (eq := _eq_string(t)) is not None}
    return [i for i in indexes if i.key in keys]


def _index_rank(rtype: ResourceType, term: Filter, table: Mapping[str, IndexEntry]) -> int:
    found = _index(rtype, term, table)
    return _NO_INDEX if found is None else found[0]


def references_members(f: Filter) -> bool:
    """Whether evaluating ``f`` needs a group's member list."""
    if isinstance(f, Compare | ValuePath | Present):
        return f.path.name.lower() == "members"
    if isinstance(f, And | Or):
        return references_members(f.left) or references_members(f.right)
    return references_members(f.inner)


@dataclass(frozen=True)
class Plan:
    """How a filter is answered. ``lookup``: the candidate ids from the cheapest index (None:
    scan the type's partition, or list it all when ``rest`` is empty too); ``rest``: the terms
    to evaluate on each candidate (for a scan, the whole filter). ``name`` says which plan was
    chosen; a cursor carries it, so a walk never continues in another plan's order."""

    name: str
    lookup: Callable[[Store], list[str]] | None
    rest: tuple[Filter, ...]
    #: A time-ordered walk instead of ``lookup`` (``meta.lastModified gt|ge``): the changes
    #: after a position, tombstones of deleted resources included.
    walk: Callable[[Store, str | None, int | None], Iterator[Change]] | None = None


def plan(
    rtype: ResourceType,
    f: Filter | None,
    *,
    strict: bool = True,
    indexes: Sequence[OperatorIndex] = (),
    changes: bool = False,
) -> Plan:
    """The plan for ``f``. The filter is checked against the resource type first (``strict``:
    an attribute the type does not define is ``invalidFilter``; otherwise unassigned), so an
    answer from an index and one from a scan fail alike. ``indexes``: the operator-chosen
    indexes the instance has built; ``changes``: whether its change index is built (then a
    ``meta.lastModified gt|ge`` term no eq index beats is a walk of the changes since then)."""
    if f is None:
        return Plan("all", None, ())
    compiled(f, rtype, strict=strict)
    table = index_table(rtype, indexes)
    terms = conjuncts(f)
    ranked = sorted(range(len(terms)), key=lambda i: _index_rank(rtype, terms[i], table))
    best = ranked[0]
    found = _index(rtype, terms[best], table)
    if found is None and changes:
        since = next((c for t in terms if (c := change_term(rtype, t)) is not None), None)
        if since is not None:
            rest = tuple(t for t in terms if t is not since[2])
            return Plan("changes", None, rest, walk=_walk_changes(rtype, since[0], since[1]))
    if found is None:
        return Plan("scan", None, (f,))
    rest = tuple(t for i, t in enumerate(terms) if i != best)
    return Plan(f"index:{found[1]}", found[2], rest)


def holds(store: Store, rtype: ResourceType, stored: Stored, p: Plan, strict: bool) -> bool:
    """Whether a candidate of plan ``p`` passes the plan's remaining terms."""
    return all(_term_holds(store, rtype, stored, t, strict) for t in p.rest)


def find(
    store: Store,
    rtype: ResourceType,
    f: Filter | None,
    *,
    strict: bool = True,
    indexes: Sequence[OperatorIndex] = (),
    changes: bool = False,
) -> Iterator[Stored]:
    """Every stored resource matching ``f`` (documents without members), lazily: a scan reads a
    page of the partition at a time (:func:`plan`)."""
    chosen = plan(rtype, f, strict=strict, indexes=indexes, changes=changes)
    if chosen.walk is not None:  # live resources only: find() has no way to say "deleted"
        for change in chosen.walk(store, None, None):
            if not change.deleted:
                try:
                    stored = store.get(rtype.name, change.id)
                except NotFound:
                    continue
                if holds(store, rtype, stored, chosen, strict):
                    yield stored
        return
    if chosen.lookup is None:
        for stored in store.scan(rtype.name):
            if holds(store, rtype, stored, chosen, strict):
                yield stored
        return
    for rid in dict.fromkeys(chosen.lookup(store)):
        try:
            stored = store.get(rtype.name, rid)
        except NotFound:
            continue  # an index row whose resource went away between reads
        if holds(store, rtype, stored, chosen, strict):
            yield stored


def _term_holds(
    store: Store, rtype: ResourceType, stored: Stored, term: Filter, strict: bool
) -> bool:
    mid = member_id(rtype, term)
    if mid is not None:
        if stored.members is not None:  # read with the group: no membership read needed
            return any(m.value == mid for m in stored.members)
        return store.has_member(stored.id, mid)
    return matches(term, _with_members(store, rtype, stored, term), rtype, strict=strict)


def _with_members(store: Store, rtype: ResourceType, stored: Stored, f: Filter) -> dict[str, Any]:
    if rtype.name == "Group" and references_members(f):
        doc = dict(stored.doc)
        members = stored.members if stored.members is not None else store.list_members(stored.id)
        doc["members"] = [{"value": m.value, "type": m.type, "display": m.display} for m in members]
        return doc
    return stored.doc
