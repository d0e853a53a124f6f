"""Query planning: turn a parsed filter into point reads where Entra's shapes allow it.

Every query Entra sends is answered without a scan (DESIGN.md "Storage design"):
``id eq``, ``userName eq`` (case-insensitive), ``externalId eq``, group ``displayName eq``,
``members eq`` / ``members[value eq ..]`` (reverse membership rows), and any ``and`` of those
with other terms (the other terms are evaluated on the few candidates; a ``members`` term on a
known group is a single membership point read). Anything else scans the resource type's
partition and evaluates the filter in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scim_core.errors import NotFound
from scim_core.filter import And, AttrPath, Compare, Filter, Or, Present, ValuePath, matches
from scim_core.schema import ResourceType
from scim_core.store import Store, Stored


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
    if isinstance(term, Compare) and term.op == "eq" and isinstance(term.value, str | int | float):
        if isinstance(term.value, bool):
            return None
        return term.path, str(term.value)
    return None


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


def _index_lookup(store: Store, rtype: ResourceType, term: Filter) -> list[str] | None:
    """Candidate ids for one term via an index, or None if the term has no index."""
    mid = member_id(rtype, term)
    if mid is not None:
        return store.groups_of(mid)
    eq = _eq_string(term)
    if eq is None or eq[0].sub is not None:
        return None
    name, value = _core_name(rtype, eq[0]), eq[1]
    if name == "id":
        return [value]
    if name == "externalid":
        return store.lookup(rtype.name, "externalId", value)
    unique = {"User": "username", "Group": "displayname"}[rtype.name]
    if name == unique:
        index = "userName" if rtype.name == "User" else "displayName"
        return store.lookup(rtype.name, index, value.casefold())
    return None


def _index_rank(rtype: ResourceType, term: Filter) -> int:
    """Cheapest index first: id (no lookup), unique, externalId, membership."""
    if member_id(rtype, term) is not None:
        return 3
    eq = _eq_string(term)
    if eq is None or eq[0].sub is not None:
        return 9
    name = _core_name(rtype, eq[0])
    return {"id": 0, "username": 1, "displayname": 1, "externalid": 2}.get(name or "", 9)


def references_members(f: Filter) -> bool:
    """Whether evaluating ``f`` needs a group's member list."""
    if isinstance(f, Compare | ValuePath | Present):
        return f.path.name.lower() == "members"
    if isinstance(f, And | Or):
        return references_members(f.left) or references_members(f.right)
    return references_members(f.inner)


def find(store: Store, rtype: ResourceType, f: Filter | None) -> Iterator[Stored]:
    """Every stored resource matching ``f`` (documents without members)."""
    if f is None:
        yield from store.scan(rtype.name)
        return
    terms = conjuncts(f)
    ranked = sorted(range(len(terms)), key=lambda i: _index_rank(rtype, terms[i]))
    best = ranked[0]
    if _index_rank(rtype, terms[best]) == 9:
        yield from _scan(store, rtype, f)
        return
    candidates = _index_lookup(store, rtype, terms[best]) or []
    rest = [t for i, t in enumerate(terms) if i != best]
    for rid in dict.fromkeys(candidates):
        try:
            stored = store.get(rtype.name, rid)
        except NotFound:
            continue  # an index row whose resource went away between reads
        if all(_term_holds(store, rtype, stored, t) for t in rest):
            yield stored


def _term_holds(store: Store, rtype: ResourceType, stored: Stored, term: Filter) -> bool:
    mid = member_id(rtype, term)
    if mid is not None:
        if stored.members is not None:  # read with the group: no membership read needed
            return any(m.value == mid for m in stored.members)
        return store.has_member(stored.id, mid)
    return matches(term, _with_members(store, rtype, stored, term), rtype)


def _with_members(store: Store, rtype: ResourceType, stored: Stored, f: Filter) -> dict[str, Any]:
    if rtype.name == "Group" and references_members(f):
        doc = dict(stored.doc)
        members = stored.members if stored.members is not None else store.list_members(stored.id)
        doc["members"] = [{"value": m.value, "type": m.type, "display": m.display} for m in members]
        return doc
    return stored.doc


def _scan(store: Store, rtype: ResourceType, f: Filter) -> Iterator[Stored]:
    for stored in store.scan(rtype.name):
        if matches(f, _with_members(store, rtype, stored, f), rtype):
            yield stored
