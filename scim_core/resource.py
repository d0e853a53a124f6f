"""Resource documents: reading a client's JSON into a stored document, and rendering a stored
document back to the wire with ``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5,
§3.9) and the ``returned`` characteristic of each attribute (RFC 7643 §2.4).

Input is lenient where Microsoft Entra needs it (ENTRA.md "Create"): client-sent ``meta``,
``id`` and other read-only attributes are ignored, ``null`` and empty arrays mean "absent",
unknown attributes of known schemas and unknown extension URNs are dropped, boolean strings
(``"False"``) are coerced. Wrong types of known attributes are a 400 ``invalidValue``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from scim_core.errors import BadRequest, InvalidSyntax, InvalidValue
from scim_core.schema import Attribute, ResourceType
from scim_core.store import Member
from scim_core.values import coerce_value

#: Longest string we accept in any attribute value: Table Storage strings are ≤ 64 KiB, and
#: nothing in a SCIM user needs more than this.
MAX_STRING = 32_000


def _drop_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _clean(attr: Attribute, value: Any, where: str) -> Any:
    """Coerce one attribute value against its definition, dropping read-only sub-attributes."""
    if attr.multi_valued:
        if not isinstance(value, list):
            value = [value]  # a single value for a multi-valued attribute: be lenient
        out = []
        for item in value:
            if _drop_empty(item):
                continue
            out.append(_clean_single(attr, item, where))
        return out
    return _clean_single(attr, value, where)


def _clean_single(attr: Attribute, value: Any, where: str) -> Any:
    if attr.is_complex:
        if not isinstance(value, dict):
            raise InvalidValue(f"'{where}' must be an object, got {type(value).__name__}")
        out: dict[str, Any] = {}
        for key, sub_value in value.items():
            sub = attr.sub(key)
            if sub is None or sub.mutability == "readOnly" or _drop_empty(sub_value):
                continue
            out[sub.name] = _clean(sub, sub_value, f"{where}.{sub.name}")
        return out
    coerced = coerce_value(attr, value)
    if isinstance(coerced, str) and len(coerced) > MAX_STRING:
        raise InvalidValue(f"'{where}' is longer than {MAX_STRING} characters")
    return coerced


def read_input(rtype: ResourceType, body: Any) -> tuple[dict[str, Any], list[Member] | None]:
    """Turn a POST/PUT body into a document (without id/meta) and, for groups, its members.

    Returns ``(doc, members)``; ``members`` is None when the body does not mention members.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas)
    ):
        raise InvalidSyntax("'schemas' must be a list of schema URNs")
    doc: dict[str, Any] = {}
    members: list[Member] | None = None
    for key, value in body.items():
        low = key.lower()
        if low in ("schemas", "id", "meta") or _drop_empty(value):
            continue
        if ":" in key:  # an extension schema's attributes, keyed by its URN
            ext = rtype.extension(key)
            if ext is None:
                continue  # unknown URN (Entra docs show a malformed enterprise URN): tolerate
            if not isinstance(value, dict):
                raise InvalidValue(f"'{key}' must be an object of extension attributes")
            ext_doc: dict[str, Any] = {}
            for sub_key, sub_value in value.items():
                attr = ext.attribute(sub_key)
                if attr is None or attr.mutability == "readOnly" or _drop_empty(sub_value):
                    continue
                ext_doc[attr.name] = _clean_ext_value(attr, sub_value, f"{ext.id}:{attr.name}")
            if ext_doc:
                doc[ext.id] = ext_doc
            continue
        resolved = rtype.resolve(None, key)
        if resolved is None:
            continue  # unknown attribute of a known schema: ignored (ENTRA.md "Create")
        attr = resolved.attribute
        if rtype.name == "Group" and attr.name == "members":
            members = read_members(value)
            continue
        if attr.mutability == "readOnly" or attr.mutability == "writeOnly":
            # writeOnly = password: this service never stores credentials.
            continue
        doc[attr.name] = _clean(attr, value, attr.name)
    for _, attr in rtype.attributes():
        if attr.required and attr.mutability != "readOnly" and not doc.get(attr.name):
            raise InvalidValue(f"'{attr.name}' is required")
    return doc, members


def _clean_ext_value(attr: Attribute, value: Any, where: str) -> Any:
    # Entra sends the manager as a plain id string (ENTRA.md "Manager"); store {"value": id}.
    if attr.name == "manager" and isinstance(value, str):
        return {"value": value}
    return _clean(attr, value, where)


def read_members(value: Any) -> list[Member]:
    """Parse a ``members`` list: ``[{"value": id, "type"?: ..., "display"?: ...}]``."""
    if not isinstance(value, list):
        value = [value]
    out: dict[str, Member] = {}
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), str)
            or not item["value"]
        ):
            raise InvalidValue("each member must be an object with a non-empty string 'value'")
        mtype = item.get("type") or "User"
        if mtype not in ("User", "Group"):
            raise InvalidValue(f"member type must be 'User' or 'Group', got {mtype!r}")
        display = item.get("display")
        if len(item["value"]) > 128 or (isinstance(display, str) and len(display) > MAX_STRING):
            raise InvalidValue("a member's value or display is longer than allowed")
        out[item["value"]] = Member(
            item["value"], mtype, display if isinstance(display, str) else None
        )
    return list(out.values())


def version_of(etag: str) -> str:
    """``meta.version`` / the ETag header, derived from the store's ETag (RFC 7644 §3.14)."""
    return 'W/"' + hashlib.sha256(etag.encode()).hexdigest()[:24] + '"'


def etag_matches(header: str, version: str) -> bool:
    """Weak comparison of an If-Match / If-None-Match header against a version (RFC 7232 §2.3.2)."""
    strong = version.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == strong:
            return True
    return False


class Projection:
    """Which attributes to return: built from ``attributes`` / ``excludedAttributes``."""

    def __init__(
        self, rtype: ResourceType, attributes: Iterable[str] = (), excluded: Iterable[str] = ()
    ):
        self.rtype = rtype
        self.include = self._paths(attributes)
        self.exclude = self._paths(excluded)

    def _paths(self, paths: Iterable[str]) -> set[tuple[str | None, str, str | None]]:
        out: set[tuple[str | None, str, str | None]] = set()
        for raw in paths:
            raw = raw.strip()
            if not raw:
                continue
            urn, rest = self.rtype.split_urn(raw)
            if not rest:  # a whole extension URN
                if urn is not None:
                    out.add((urn.lower(), "*", None))
                continue
            name, _, sub = rest.partition(".")
            resolved = self.rtype.resolve(urn, name, sub or None)
            if resolved is None:
                # Unknown attributes name nothing to return: no error (RFC 7644 §3.4.2.5 is silent;
                # scim2-server and Entra both expect leniency here).
                continue
            out.add(
                (
                    resolved.urn.lower() if resolved.urn else None,
                    resolved.attribute.name.lower(),
                    resolved.sub.name.lower() if resolved.sub else None,
                )
            )
        return out

    def wants(self, urn: str | None, attr: Attribute) -> bool:
        """Whether a top-level attribute is returned (sub-attributes filtered by :meth:`apply`)."""
        key_urn = urn.lower() if urn else None
        name = attr.name.lower()
        if attr.returned == "never":
            return False
        if attr.returned == "always":
            return True
        if self.include:
            return any(u == key_urn and (n == name or n == "*") for u, n, _ in self.include)
        if (key_urn, name, None) in self.exclude or (key_urn, "*", None) in self.exclude:
            return False
        return attr.returned != "request"

    def wants_members(self) -> bool:
        group = self.rtype.resolve(None, "members")
        return group is not None and self.wants(None, group.attribute)

    def wants_groups(self) -> bool:
        groups = self.rtype.resolve(None, "groups")
        return groups is not None and self.wants(None, groups.attribute)

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Project a full wire resource (with ``schemas``, ``id``, ``meta``)."""
        out: dict[str, Any] = {"schemas": resource.get("schemas", [])}
        for urn, attr in self.rtype.attributes():
            if urn is None:
                if attr.name not in resource or not self.wants(None, attr):
                    continue
                out[attr.name] = self._subset(None, attr, resource[attr.name])
            else:
                ext = resource.get(urn)
                if not isinstance(ext, dict) or attr.name not in ext or not self.wants(urn, attr):
                    continue
                out.setdefault(urn, {})[attr.name] = self._subset(urn.lower(), attr, ext[attr.name])
        for ext_schema in self.rtype.server_maintained_extensions():
            # An empty server-maintained extension is kept: a client PATCHed it in as a whole
            # (scim_core/patch.py), and reading it back must show it.
            if resource.get(ext_schema.id) == {} and self._wants_extension(ext_schema.id):
                out[ext_schema.id] = {}
        return out

    def _wants_extension(self, urn: str) -> bool:
        key = urn.lower()
        if self.include:
            return any(u == key for u, _, _ in self.include)
        return (key, "*", None) not in self.exclude

    def _subset(self, urn: str | None, attr: Attribute, value: Any) -> Any:
        name = attr.name.lower()
        subs_in = {s for u, n, s in self.include if u == urn and n == name and s}
        whole_in = any(u == urn and n == name and s is None for u, n, s in self.include)
        subs_out = {s for u, n, s in self.exclude if u == urn and n == name and s}
        if not attr.is_complex or (not subs_out and (whole_in or not subs_in)):
            return value

        def pick(item: Any) -> Any:
            if not isinstance(item, dict):
                return item
            return {
                k: v
                for k, v in item.items()
                if (not subs_in or whole_in or k.lower() in subs_in or k.lower() == "value")
                and k.lower() not in subs_out
            }

        return [pick(v) for v in value] if isinstance(value, list) else pick(value)


def require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"{what} must be a JSON object", scim_type="invalidSyntax")
    return body
