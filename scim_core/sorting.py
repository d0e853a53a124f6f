"""``sortBy`` / ``sortOrder`` (RFC 7644 §3.4.2.3)."""

from __future__ import annotations

from typing import Any

from scim_core.errors import InvalidValue
from scim_core.schema import ResourceType
from scim_core.store import Stored


def _sort_value(rtype: ResourceType, doc: dict[str, Any], path: str) -> Any:
    urn, rest = rtype.split_urn(path)
    name, _, sub = rest.partition(".")
    resolved = rtype.resolve(urn, name, sub or None)
    if resolved is None:
        return None
    container = doc.get(resolved.urn, {}) if resolved.urn else doc
    value = container.get(resolved.attribute.name) if isinstance(container, dict) else None
    attr = resolved.attribute
    if attr.multi_valued and isinstance(value, list):
        # §3.4.2.3: a multi-valued attribute sorts by its primary value, else the first.
        primary = next((v for v in value if isinstance(v, dict) and v.get("primary")), None)
        value = primary or (value[0] if value else None)
    if isinstance(value, dict):
        value = value.get(resolved.sub.name if resolved.sub else "value")
    target = resolved.target
    if isinstance(value, str) and not target.case_exact:
        value = value.casefold()
    return value


def sort_resources(
    found: list[tuple[ResourceType, Stored]], sort_by: str, descending: bool
) -> list[tuple[ResourceType, Stored]]:
    """Sort by the attribute ``sort_by``; resources without a value go last (§3.4.2.3)."""
    keyed = []
    for rt, stored in found:
        value = _sort_value(rt, stored.doc, sort_by)
        keyed.append(
            (
                value is None,
                (type(value).__name__, value) if value is not None else ("", ""),
                rt,
                stored,
            )
        )
    try:
        present = sorted((k for k in keyed if not k[0]), key=lambda k: k[1], reverse=descending)
    except TypeError as exc:
        raise InvalidValue(f"cannot sort by {sort_by!r}: values are not comparable") from exc
    missing = [k for k in keyed if k[0]]
    return [(k[2], k[3]) for k in present + missing]
