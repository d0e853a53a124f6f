"""Which Graph properties an instance selects (GRAPH_SELECT), and the enrichment extension
schema (``urn:scimfunc:schemas:extension:graph:1.0:User``) it therefore publishes.

The sync (graph_enrich/config.py) selects these properties from Graph, and ``/Schemas``
announces exactly them (plus the attributes the service itself maintains): a schema that
listed ``city`` or ``usageLocation`` on an instance whose ``$select`` never fills them would
promise data that never arrives. Kept in scim_core, not graph_enrich, because the HTTP side
builds its resource types from it (``scim_core.wiring``) and scim_core never imports
graph_enrich (DESIGN.md, dependency direction).
"""

from __future__ import annotations

from scim_core.schema import GRAPH_USER_SCHEMA, Schema

#: The default $select: what Entra's provisioning does not map but applications want.
DEFAULT_SELECT = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "officeLocation",
    "companyName",
    "employeeId",
    "mobilePhone",
    "businessPhones",
    "accountEnabled",
    "manager",
)
#: Always selected whatever GRAPH_SELECT says: the join (id, userPrincipalName) and the
#: deprovisioning signal (accountEnabled) depend on them.
REQUIRED = ("id", "userPrincipalName", "accountEnabled")
#: Also selected with GRAPH_JOIN=userName: a guest's mail addresses are join candidates
#: (graph_enrich/guests.py).
USER_NAME_JOIN_REQUIRED = ("mail", "otherMails")
#: Extension attributes the service itself maintains; not Graph properties.
SERVICE_ATTRIBUTES = frozenset(
    {
        "objectId",
        "managerId",
        "removedReason",
        "removedDateTime",
        "deprovisioned",
        "disabledBySync",
        "fullSyncDateTime",
        "syncedDateTime",
        "writebackDateTime",
        "writebackError",
    }
)


def requested_properties(graph_select: str | None, join: str = "externalId") -> tuple[str, ...]:
    """Every name the instance asks Graph for, in order, as written (unvalidated):
    the required ones, the join's, then GRAPH_SELECT (or the default)."""
    text = (graph_select or "").strip()
    requested = (
        DEFAULT_SELECT if not text else tuple(p.strip() for p in text.split(",") if p.strip())
    )
    join_required = USER_NAME_JOIN_REQUIRED if join.strip().lower() == "username" else ()
    return (*REQUIRED, *join_required, *requested)


def graph_user_schema(graph_select: str | None = None, join: str = "externalId") -> Schema:
    """The enrichment extension as this instance publishes it: the Graph properties it
    selects (``manager`` selected: ``managerId``) and the service's own attributes."""
    full = Schema.load("graph_user.json")
    assert full.id == GRAPH_USER_SCHEMA
    wanted = {p.lower() for p in requested_properties(graph_select, join)}
    keep = {a.lower() for a in SERVICE_ATTRIBUTES}
    if "manager" not in wanted:
        keep.discard("managerid")
    attributes = tuple(
        a for a in full.attributes if a.name.lower() in wanted or a.name.lower() in keep
    )
    return Schema(full.id, full.name, full.description, attributes)


__all__ = [
    "DEFAULT_SELECT",
    "REQUIRED",
    "SERVICE_ATTRIBUTES",
    "USER_NAME_JOIN_REQUIRED",
    "graph_user_schema",
    "requested_properties",
]
