"""GRAPH_WRITEBACK: which attributes of the app-owned extension are written to Entra, as which
Graph user property, checked once at start-up.

Format: comma-separated ``appAttribute=graphProperty`` pairs, e.g.
``phoneNumber=businessPhones,badgeId=employeeId,hireDate=employeeHireDate``. The app attribute
must be declared in SCIM_APP_EXTENSION_ATTRIBUTES; the Graph property must be one an
application may set with ``PATCH /users/{id}`` (Microsoft Learn, "Update user",
https://learn.microsoft.com/graph/api/user-update, and "user resource type",
https://learn.microsoft.com/graph/api/resources/user), of a type the attribute's values fit.
A mapping to a read-only, unknown or ill-typed property is a :class:`ConfigurationError` naming
it, raised before any Graph request: Graph would answer every PATCH with 400 and the run would
report the same error for every user, forever.

Deliberately not writable here, though Graph accepts some of them: the identity properties
Entra provisions and users sign in with (``userPrincipalName``, ``accountEnabled``,
``passwordProfile``, ``mail``, ``identities``): the app owns data *about* a user, Entra owns
the account. The SharePoint profile properties (``aboutMe``, ``birthday``, ``hireDate``,
``interests``, ``mySite``, ``pastProjects``, ``preferredName``, ``responsibilities``,
``schools``, ``skills``) "must be updated on their own" ("Update user"), which would cost a
PATCH each; ``employeeHireDate`` is the directory's hire date.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph_enrich.errors import ConfigurationError
from scim_core.app_extension import app_user_schema
from scim_core.schema import Attribute
from scim_core.settings import Settings

#: Writable user properties (Learn, "Update user" request body table) and their Graph type:
#: ``string``, ``strings`` (String collection), ``datetime`` (DateTimeOffset), ``boolean``.
WRITABLE: Mapping[str, str] = {
    "businessPhones": "strings",
    "city": "string",
    "companyName": "string",
    "country": "string",
    "department": "string",
    "displayName": "string",
    "employeeHireDate": "datetime",
    "employeeLeaveDateTime": "datetime",
    "employeeId": "string",
    "employeeType": "string",
    "faxNumber": "string",
    "givenName": "string",
    "jobTitle": "string",
    "mailNickname": "string",
    "mobilePhone": "string",
    "officeLocation": "string",
    "otherMails": "strings",
    "postalCode": "string",
    "preferredLanguage": "string",
    "state": "string",
    "streetAddress": "string",
    "surname": "string",
    "usageLocation": "string",
}
#: "user resource type": these are read-only (or set only by Entra / on-premises sync).
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "deletedDateTime",
        "creationType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "imAddresses",
        "isResourceAccount",
        "lastPasswordChangeDateTime",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesLastSyncDateTime",
        "onPremisesProvisioningErrors",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "onPremisesUserPrincipalName",
        "proxyAddresses",
        "securityIdentifier",
        "signInActivity",
        "signInSessionsValidFromDateTime",
        "assignedLicenses",
        "assignedPlans",
        "provisionedPlans",
        "licenseAssignmentStates",
        "manager",
        "memberOf",
    }
)
#: Entra's account: writable in Graph, but never the app's to change (module docstring).
ENTRA_OWNED = frozenset(
    {
        "userPrincipalName",
        "accountEnabled",
        "passwordProfile",
        "passwordPolicies",
        "mail",
        "identities",
        "onPremisesImmutableId",
        "userType",
        "ageGroup",
        "consentProvidedForMinor",
    }
)
SHAREPOINT = frozenset(
    {
        "aboutMe",
        "birthday",
        "hireDate",
        "interests",
        "mySite",
        "pastProjects",
        "preferredName",
        "responsibilities",
        "schools",
        "skills",
    }
)
#: ``onPremisesExtensionAttributes`` members: writable for cloud-only users ("Update user").
_EXTENSION_ATTRIBUTE = re.compile(r"^onPremisesExtensionAttributes\.extensionAttribute(\d{1,2})$")
#: Directory (schema) extension property: ``extension_<appId without dashes>_<name>``
#: (Learn, "Add custom data to resources using extensions").
_DIRECTORY_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]{1,120}$")
_LOWER = {name.lower(): name for name in (*WRITABLE, *READ_ONLY, *ENTRA_OWNED, *SHAREPOINT)}
#: SCIM attribute types each Graph type accepts.
_FITS = {
    "string": ("string", "reference"),
    "strings": ("string", "reference"),
    "datetime": ("dateTime",),
    "boolean": ("boolean",),
    "extension": ("string", "integer", "boolean", "dateTime", "reference", "binary"),
}


@dataclass(frozen=True)
class PropertyMap:
    """One pair: the app attribute (as declared) to the Graph property (as Graph spells it)."""

    attribute: str
    graph: str
    kind: str
    multi_valued: bool

    def value(self, app: Mapping[str, Any]) -> Any:
        """What the PATCH sets, from the app extension's values (absent: cleared)."""
        found = next((v for k, v in app.items() if k.lower() == self.attribute.lower()), None)
        if self.kind == "strings":
            if found is None:
                return []
            values = [str(v) for v in (found if isinstance(found, list) else [found])]
            # "user resource type", businessPhones: "Only one number can be set for this
            # property"; a second one would make Graph refuse the whole PATCH.
            return values[:1] if self.graph == "businessPhones" else values
        if found is None or found == []:
            return None
        if self.kind == "datetime" and isinstance(found, str) and len(found) == 10:
            return found + "T00:00:00Z"  # a bare date: Graph's DateTimeOffset needs a time
        return found


@dataclass(frozen=True)
class WritebackConfig:
    mappings: tuple[PropertyMap, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.mappings)

    @classmethod
    def from_settings(cls, settings: Settings) -> WritebackConfig:
        text = (settings.graph_writeback or "").strip()
        if not text:
            return cls(())
        try:
            schema = app_user_schema(settings.app_extension_attributes)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        mappings: list[PropertyMap] = []
        seen: set[str] = set()
        for pair in (p.strip() for p in text.split(",")):
            if not pair:
                continue
            name, sep, target = (part.strip() for part in pair.partition("="))
            if not sep or not name or not target:
                raise ConfigurationError(
                    f"GRAPH_WRITEBACK: {pair!r} is not appAttribute=graphProperty"
                )
            attribute = schema.attribute(name)
            if attribute is None:
                raise ConfigurationError(
                    f"GRAPH_WRITEBACK maps {name!r}, which SCIM_APP_EXTENSION_ATTRIBUTES does "
                    "not declare (only the app-owned extension is written back)"
                )
            mapping = _mapping(attribute, target)
            if mapping.graph.lower() in seen:
                raise ConfigurationError(f"GRAPH_WRITEBACK writes {mapping.graph!r} twice")
            seen.add(mapping.graph.lower())
            mappings.append(mapping)
        return cls(tuple(mappings))

    def patch_body(self, app: Mapping[str, Any]) -> dict[str, Any]:
        """The ``PATCH /users/{id}`` body for the app extension's current values."""
        body: dict[str, Any] = {}
        for m in self.mappings:
            value = m.value(app)
            if m.graph.startswith("onPremisesExtensionAttributes."):
                member = m.graph.partition(".")[2]
                body.setdefault("onPremisesExtensionAttributes", {})[member] = value
            else:
                body[m.graph] = value
        return body

    def values(self, app: Mapping[str, Any] | None) -> dict[str, Any]:
        """The mapped attributes' values (for change detection), by app attribute name."""
        app = app or {}
        return {m.attribute: m.value(app) for m in self.mappings}


def _mapping(attribute: Attribute, target: str) -> PropertyMap:
    where = f"GRAPH_WRITEBACK: {attribute.name}={target}"
    if attribute.type == "complex":
        raise ConfigurationError(f"{where}: a complex attribute has no Graph user property")
    ext_attr = _EXTENSION_ATTRIBUTE.match(target)
    if ext_attr is not None:
        if not 1 <= int(ext_attr.group(1)) <= 15:
            raise ConfigurationError(f"{where}: extensionAttribute1 .. 15 exist")
        graph, kind = target, "string"
    elif _DIRECTORY_EXTENSION.match(target):
        graph, kind = target, "extension"
    else:
        graph = _LOWER.get(target.lower(), "")
        if graph in READ_ONLY:
            raise ConfigurationError(f"{where}: {graph!r} is read-only in Microsoft Graph")
        if graph in ENTRA_OWNED:
            raise ConfigurationError(
                f"{where}: {graph!r} is the account Microsoft Entra provisions; the app's "
                "data is never written over it"
            )
        if graph in SHAREPOINT:
            raise ConfigurationError(
                f"{where}: {graph!r} is a SharePoint profile property Graph updates only in a "
                "request of its own; not supported for write-back"
            )
        if graph not in WRITABLE:
            raise ConfigurationError(
                f"{where}: {target!r} is not a user property an application can write "
                "(https://learn.microsoft.com/graph/api/user-update), nor onPremises"
                "ExtensionAttributes.extensionAttributeN, nor extension_<appId>_<name>"
            )
        kind = WRITABLE[graph]
    if attribute.type not in _FITS[kind]:
        raise ConfigurationError(
            f"{where}: a SCIM {attribute.type} does not fit Graph's {graph!r} ({kind})"
        )
    if attribute.multi_valued and kind not in ("strings", "extension"):
        raise ConfigurationError(f"{where}: {graph!r} holds one value; {attribute.name} many")
    return PropertyMap(attribute.name, graph, kind, attribute.multi_valued)
