"""SCIM schema definitions as data (RFC 7643 §7) and attribute resolution.

The schemas the service publishes at ``/Schemas`` are JSON files in ``scim_core/schemas/``;
validation, filtering, PATCH and projection are all driven by them, so an extension schema is
data, not code. Attribute names are case-insensitive (RFC 7643 §2.1).

Document shape: core attributes at the top level of a resource, extension attributes under
the extension's URN key (RFC 7643 §3.3). The common attributes ``id``, ``externalId`` and
``meta`` (RFC 7643 §3.1) belong to every resource and are resolved here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: The product's own extension: Microsoft Graph data added by the delta sync (graph_enrich).
#: Outside ``urn:ietf:params:scim``, which IANA registers for the IETF (RFC 7643 §10); every
#: attribute is ``readOnly``, so SCIM clients can read and filter it but never write it.
GRAPH_USER_SCHEMA = "urn:scimfunc:schemas:extension:graph:1.0:User"
#: The line-of-business app's own data on a user; only its ``app:write`` credential changes it
#: (scim_core/app_extension.py). Its attributes come from SCIM_APP_EXTENSION_ATTRIBUTES.
APP_USER_SCHEMA = "urn:scimfunc:schemas:extension:app:1.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: Microsoft Entra sends this URN in ``schemas`` of every group create; it has no attributes.
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"

_SCHEMA_DIR = Path(__file__).with_name("schemas")


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (RFC 7643 §7)."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribute:
        return cls(
            name=d["name"],
            type=d.get("type", "string"),
            multi_valued=bool(d.get("multiValued", False)),
            required=bool(d.get("required", False)),
            case_exact=bool(d.get("caseExact", False)),
            mutability=d.get("mutability", "readWrite"),
            returned=d.get("returned", "default"),
            uniqueness=d.get("uniqueness", "none"),
            description=d.get("description", ""),
            canonical_values=tuple(d.get("canonicalValues") or ()),
            reference_types=tuple(d.get("referenceTypes") or ()),
            sub_attributes=tuple(cls.from_dict(s) for s in d.get("subAttributes") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description or self.name,
            "required": self.required,
        }
        if self.type in ("string", "reference", "binary"):
            d["caseExact"] = self.case_exact
        if self.canonical_values:
            d["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            d["referenceTypes"] = list(self.reference_types)
        d.update(mutability=self.mutability, returned=self.returned, uniqueness=self.uniqueness)
        if self.sub_attributes:
            d["subAttributes"] = [s.to_dict() for s in self.sub_attributes]
        return d

    @cached_property
    def _subs(self) -> dict[str, Attribute]:
        return {s.name.lower(): s for s in self.sub_attributes}

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute named ``name`` (case-insensitive), or None."""
        return self._subs.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        return cls(
            d["id"],
            d.get("name", ""),
            d.get("description", ""),
            tuple(Attribute.from_dict(a) for a in d.get("attributes", ())),
        )

    @classmethod
    def load(cls, filename: str) -> Schema:
        return cls.from_dict(json.loads((_SCHEMA_DIR / filename).read_text(encoding="utf-8")))

    @cached_property
    def _attrs(self) -> dict[str, Attribute]:
        return {a.name.lower(): a for a in self.attributes}

    def attribute(self, name: str) -> Attribute | None:
        return self._attrs.get(name.lower())

    def to_resource(self, base_url: str) -> dict[str, Any]:
        """The schema as served by ``GET /Schemas/{id}`` (RFC 7643 §7)."""
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_dict() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


# Common attributes of every resource (RFC 7643 §3.1). Not listed inside schema definitions.
COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"),
    Attribute("externalId", case_exact=True),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        sub_attributes=tuple(
            Attribute(n, t, case_exact=True, mutability="readOnly")
            for n, t in (
                ("resourceType", "string"),
                ("created", "dateTime"),
                ("lastModified", "dateTime"),
                ("location", "reference"),
                ("version", "string"),
            )
        ),
    ),
)
_COMMON = {a.name.lower(): a for a in COMMON_ATTRIBUTES}


@dataclass(frozen=True)
class Resolved:
    """Where an attribute path points: the schema URN owning it (None for common attributes),
    the top-level attribute, and the sub-attribute if the path names one."""

    urn: str | None
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def target(self) -> Attribute:
        return self.sub or self.attribute

    @property
    def is_core(self) -> bool:
        return self.urn is None


@dataclass(frozen=True)
class ResourceType:
    """A resource type (RFC 7643 §6): endpoint, core schema and extension schemas."""

    name: str
    endpoint: str
    description: str
    core: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()
    #: URNs clients may send in ``schemas`` that carry no attributes we store.
    tolerated_urns: frozenset[str] = field(default_factory=frozenset)

    @cached_property
    def extension_urns(self) -> dict[str, Schema]:
        return {s.id.lower(): s for s, _ in self.extensions}

    def server_maintained_extensions(self) -> list[Schema]:
        """Extensions whose every attribute is readOnly: only the service writes them."""
        return [
            s
            for s, _ in self.extensions
            if s.attributes and all(a.mutability == "readOnly" for a in s.attributes)
        ]

    def schema_urns(self) -> list[str]:
        return [self.core.id] + [s.id for s, _ in self.extensions]

    def extension(self, urn: str) -> Schema | None:
        return self.extension_urns.get(urn.lower())

    def knows_urn(self, urn: str) -> bool:
        low = urn.lower()
        return (
            low == self.core.id.lower()
            or low in self.extension_urns
            or low in {u.lower() for u in self.tolerated_urns}
        )

    def split_urn(self, path: str) -> tuple[str | None, str]:
        """Split ``urn:...:User:name.givenName`` into (schema URN, rest). A path without a known
        URN prefix comes back as (None, path); the core URN prefix is stripped too."""
        low = path.lower()
        for urn in [self.core.id, *(s.id for s, _ in self.extensions)]:
            u = urn.lower()
            if low.startswith(u + ":"):
                return (None if urn == self.core.id else urn), path[len(urn) + 1 :]
            if low == u:
                return (None if urn == self.core.id else urn), ""
        return None, path

    def resolve(self, urn: str | None, name: str, sub: str | None = None) -> Resolved | None:
        """Resolve ``name`` (and optional ``sub``) within ``urn`` (None = core or common)."""
        if urn is not None and urn.lower() != self.core.id.lower():
            schema = self.extension(urn)
            if schema is None:
                return None
            attr = schema.attribute(name)
            urn = schema.id
        else:
            urn = None
            attr = self.core.attribute(name) or _COMMON.get(name.lower())
        if attr is None:
            return None
        if sub is None:
            return Resolved(urn, attr)
        sub_attr = attr.sub(sub)
        return Resolved(urn, attr, sub_attr) if sub_attr is not None else None

    def resolve_path(self, path: str) -> Resolved | None:
        """Resolve a dotted attribute path with optional URN prefix (no filters)."""
        urn, rest = self.split_urn(path)
        if not rest:
            return None
        name, _, sub = rest.partition(".")
        return self.resolve(urn, name, sub or None)

    def attributes(self) -> Iterator[tuple[str | None, Attribute]]:
        """Every top-level attribute with its owning URN (None = core/common)."""
        for a in COMMON_ATTRIBUTES:
            yield None, a
        for a in self.core.attributes:
            yield None, a
        for s, _ in self.extensions:
            for a in s.attributes:
                yield s.id, a

    def to_resource(self, base_url: str) -> dict[str, Any]:
        """As served by ``GET /ResourceTypes/{name}`` (RFC 7643 §6)."""
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": [{"schema": s.id, "required": r} for s, r in self.extensions],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url}/ResourceTypes/{self.name}",
            },
        }


def default_resource_types(
    extra_user_extensions: Sequence[Schema] = (),
    app_extension: Schema | None = None,
    graph_extension: Schema | None = None,
) -> dict[str, ResourceType]:
    """The User and Group resource types this service implements. ``app_extension``: the
    app-owned extension with the operator's attributes; it is part of User only when it has
    some (an extension without attributes holds nothing, and announcing it would invite
    writes that could never be read back: scim_core/app_extension.py). ``graph_extension``:
    the enrichment extension as the instance selects it (scim_core/graph_schema.py); None:
    every property the sync can hold."""
    app = (app_extension,) if app_extension is not None and app_extension.attributes else ()
    user = ResourceType(
        "User",
        "/Users",
        "User Account",
        Schema.load("user.json"),
        (
            (Schema.load("enterprise_user.json"), False),
            (graph_extension or Schema.load("graph_user.json"), False),
            *((s, False) for s in app),
            *((s, False) for s in extra_user_extensions),
        ),
    )
    group = ResourceType(
        "Group",
        "/Groups",
        "Group",
        Schema.load("group.json"),
        tolerated_urns=frozenset({ENTRA_GROUP_SCHEMA}),
    )
    return {"User": user, "Group": group}


def published_schemas(types: dict[str, ResourceType]) -> list[Schema]:
    """Every schema served at ``/Schemas``, each once."""
    seen: dict[str, Schema] = {}
    for rt in types.values():
        for s in (rt.core, *(s for s, _ in rt.extensions)):
            seen.setdefault(s.id, s)
    return list(seen.values())
