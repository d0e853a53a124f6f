"""PATCH paths resolved against a resource type (RFC 7644 §3.5.2: ``attrPath``, ``valuePath``,
``subAttr``), and what a value filter says: the element it describes, the member ids it names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_core.errors import InvalidFilter, InvalidPath
from scim_core.filter import And, Compare, Filter, Or, parse_path
from scim_core.schema import Attribute, ResourceType
from scim_core.values import coerce_values

_STRINGS = frozenset({"string", "reference", "binary"})


@dataclass(frozen=True)
class Target:
    """A resolved path: the attribute (in extension ``urn``, None = core/common), an optional
    value filter on a multi-valued complex attribute, and an optional sub-attribute."""

    urn: str | None
    attr: Attribute
    value_filter: Filter | None = None
    sub: Attribute | None = None


def resolve_target(rtype: ResourceType, path: str) -> Target | None:
    """Resolve a path; None for one that names something never patched (``schemas``)."""
    parsed = parse_path(path)
    urn, name = parsed.attr.urn, parsed.attr.name
    if urn is None and name.lower() == "schemas":
        return None
    if urn is not None and not rtype.knows_urn(urn):
        raise InvalidPath(
            f"unknown schema URN in {path!r}: {rtype.name} resources "
            f"have {', '.join(rtype.schema_urns())}"
        )
    found = rtype.resolve(urn, name)
    if found is None and urn is None:
        # Entra: bare "manager" names the enterprise attribute (ENTRA.md "Manager").
        found = next((r for s, _ in rtype.extensions if (r := rtype.resolve(s.id, name))), None)
    if found is None:
        where = urn or rtype.core.id
        raise InvalidPath(f"{name!r} is not an attribute of {where} (path {path!r})")
    attr = found.attribute
    sub_name = parsed.attr.sub or parsed.sub
    sub = attr.sub(sub_name) if sub_name else None
    if sub_name and sub is None:
        raise InvalidPath(f"{sub_name!r} is not a sub-attribute of {attr.name!r}")
    if parsed.value_filter is not None and not (attr.multi_valued and attr.is_complex):
        raise InvalidPath(
            f"a value filter needs a multi-valued complex attribute, {attr.name!r} is not one"
        )
    return Target(found.urn, attr, parsed.value_filter, sub)


def filter_ids(f: Filter) -> list[str]:
    """The ids of ``members[value eq "a" or value eq "b"]``: the only member filters we can
    apply without reading a group's member rows."""
    if isinstance(f, Or):
        return filter_ids(f.left) + filter_ids(f.right)
    if (
        isinstance(f, Compare)
        and f.op == "eq"
        and f.path.name.lower() == "value"
        and f.path.sub is None
        and f.value is not None
    ):
        return [f.value if isinstance(f.value, str) else f.raw or str(f.value)]
    raise InvalidFilter(
        "a members filter in PATCH must be 'value eq \"<id>\"' (or several joined by 'or')"
    )


def described(attr: Attribute, f: Filter) -> dict[str, Any] | None:
    """The element a filter of ``eq`` comparisons joined by ``and`` describes, or None."""
    terms = conjuncts(f)
    out: dict[str, Any] = {}
    for term in terms:
        if not (
            isinstance(term, Compare)
            and term.op == "eq"
            and term.value is not None
            and term.path.sub is None
            and term.path.urn is None
        ):
            return None
        sub = attr.sub(term.path.name)
        if sub is None or sub.mutability == "readOnly":
            return None
        raw = term.raw if term.raw is not None and sub.type in _STRINGS else term.value
        out[sub.name] = coerce_values(sub, raw)
    return out


def conjuncts(f: Filter) -> list[Filter]:
    return [*conjuncts(f.left), *conjuncts(f.right)] if isinstance(f, And) else [f]
