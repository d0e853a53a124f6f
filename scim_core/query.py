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
from collections.abc import Callable, Iterator
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
)
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


#: The indexed string attributes of each resource type, cheapest first, with how the index
#: normalises a value (as the service keys it: ``ScimService.keys``). One table for ranking and
#: lookup, so the planner can never rank an index that the lookup does not have.
_INDEXES: dict[str, dict[str, tuple[int, str, Callable[[str], str]]]] = {
    "User": {
        "id": (0, "id", str),
        "username": (1, "userName", str.casefold),
        "externalid": (2, "externalId", str),
    },
    "Group": {
        "id": (0, "id", str),
        "displayname": (1, "displayName", str.casefold),
        "externalid": (2, "externalId", str),
    },
}
_MEMBERSHIP_RANK = 3
_NO_INDEX = 9


def _index(rtype: ResourceType, term: Filter) -> tuple[int, Callable[[Store], list[str]]] | None:
    """How one term can be answered from an index: its rank (cheapest first) and the lookup of
    candidate ids; None if no index answers it."""
    mid = member_id(rtype, term)
    if mid is not None:
        return _MEMBERSHIP_RANK, lambda store: store.groups_of(mid)
    eq = _eq_string(term)
    if eq is None or eq[0].sub is not None:
        return None
    found = _INDEXES[rtype.name].get(_core_name(rtype, eq[0]) or "")
    if found is None:
        return None
    rank, index, normalise = found
    value = normalise(eq[1])
    if index == "id":
        return rank, lambda store: [value]
    return rank, lambda store: store.lookup(rtype.name, index, value)


def _index_rank(rtype: ResourceType, term: Filter) -> int:
    found = _index(rtype, term)
    return _NO_INDEX if found is None else found[0]


def references_members(f: Filter) -> bool:
    """Whether evaluating ``f`` needs a group's member list."""
    if isinstance(f, Compare | ValuePath | Present):
        return f.path.name.lower() == "members"
    if isinstance(f, And | Or):
        return references_members(f.left) or references_members(f.right)
    return references_members(f.inner)


def find(
    store: Store, rtype: ResourceType, f: Filter | None, *, strict: bool = True
) -> Iterator[Stored]:
    """Every stored resource matching ``f`` (documents without members). The filter is checked
    against the resource type before anything is read (``strict``: an attribute the type does
    not define is ``invalidFilter``; otherwise unassigned), so an answer from an index and one
    from a scan fail alike."""
    if f is None:
        yield from store.scan(rtype.name)
        return
    compiled(f, rtype, strict=strict)
    terms = conjuncts(f)
    ranked = sorted(range(len(terms)), key=lambda i: _index_rank(rtype, terms[i]))
    best = ranked[0]
    plan = _index(rtype, terms[best])
    if plan is None:
        yield from _scan(store, rtype, f, strict)
        return
    candidates = plan[1](store)
    rest = [t for i, t in enumerate(terms) if i != best]
    for rid in dict.fromkeys(candidates):
        try:
            stored = store.get(rtype.name, rid)
        except NotFound:
            continue  # an index row whose resource went away between reads
        if all(_term_holds(store, rtype, stored, t, strict) for t in rest):
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


def _scan(store: Store, rtype: ResourceType, f: Filter, strict: bool) -> Iterator[Stored]:
    for stored in store.scan(rtype.name):
        if matches(f, _with_members(store, rtype, stored, f), rtype, strict=strict):
            yield stored
