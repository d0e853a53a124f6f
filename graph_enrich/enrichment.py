"""From a Graph user (a delta item, or a single-user GET) to the SCIM user's enrichment.

Pure functions, no I/O. The enrichment lives under the product's extension URN
(``scim_core.schema.GRAPH_USER_SCHEMA``); nothing Entra provisions is touched, except ``active``
when GRAPH_DEPROVISION=disable asks for it. Graph's delta semantics, from Microsoft Learn
"user: delta" and "Use delta query to track changes in Microsoft Graph data":

- by default a delta item carries every selected property, changed or not; a property set to
  null comes back as ``null``; one never set is absent. In a delta round an absent property
  therefore means "unchanged" (merge); in a full round (the initial one, or after a resync)
  it means "not set" (replace), so a value cleared while our token was expired goes away too;
- ``"@removed": {"reason": "changed"}``: deleted, restorable from deletedItems for 30 days;
  ``"reason": "deleted"``: permanently deleted. A user that comes back carries no annotation;
- ``manager@delta`` lists the manager; an entry with ``@removed`` means the manager was removed.
Replays ("Your application must be prepared for replays") are no-ops: the new document is
returned only when something changed, and ``syncedDateTime`` moves only then.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graph_enrich.config import SyncConfig
from scim_core.schema import GRAPH_USER_SCHEMA

EXT = GRAPH_USER_SCHEMA


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: ``Change.manager`` when the item says nothing about the manager.
UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class Change:
    """One Graph user as the sync sees it."""

    object_id: str
    removed: str | None = None
    """``changed`` / ``deleted`` when Graph reports the user removed."""
    properties: dict[str, Any] = field(default_factory=dict)
    """The configured properties present in the item (``None``: cleared)."""
    manager: Any = UNCHANGED
    """The manager's object id, ``None`` when removed, :data:`UNCHANGED` when not stated."""

    @property
    def user_principal_name(self) -> str | None:
        upn = self.properties.get("userPrincipalName")
        return upn if isinstance(upn, str) and upn else None

    @classmethod
    def from_graph(
        cls, item: dict[str, Any], config: SyncConfig, *, expanded: bool = False
    ) -> Change | None:
        """A delta item, or (``expanded``) a ``GET /users/{id}?$expand=manager`` answer, where
        a missing ``manager`` means there is none. None when the item names no user."""
        object_id = item.get("id")
        if not isinstance(object_id, str) or not object_id:
            return None
        removed = item.get("@removed")
        if isinstance(removed, dict):
            reason = removed.get("reason")
            return cls(object_id, reason if reason in ("changed", "deleted") else "deleted")
        wanted = {p.lower(): p for p in config.properties}
        properties = {wanted[k.lower()]: v for k, v in item.items() if k.lower() in wanted}
        manager: Any = UNCHANGED
        if config.tracks_manager:
            if "manager@delta" in item:
                manager = _delta_manager(item["manager@delta"])
            elif expanded:
                found = item.get("manager")
                manager = found.get("id") if isinstance(found, dict) else None
        return cls(object_id, None, properties, manager)


def _delta_manager(entries: Any) -> str | None:
    current = None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            current = None if "@removed" in entry else entry["id"]
    return current


def extension(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The enrichment of a stored SCIM user (empty when it has none yet)."""
    value = doc.get(EXT)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Policy:
    config: SyncConfig
    now: str
    """This run's timestamp (ISO 8601, UTC)."""
    full_round: str | None = None
    """Start of the full round this change belongs to (stamped as fullSyncDateTime), or None."""
    snapshot: bool = False
    """The change is a whole user (a single-user GET): absent properties are unset."""


def enrich(doc: dict[str, Any], change: Change, policy: Policy) -> dict[str, Any] | None:
    """The SCIM user document with ``change`` applied, or None when nothing would change."""
    mode = policy.config.deprovision
    if change.removed is not None and mode == "off":
        return None  # GRAPH_DEPROVISION=off: removals are not the product's business
    old = extension(doc)
    ext = copy.deepcopy(old)
    ext["objectId"] = change.object_id
    if change.removed is not None:
        ext["removedReason"] = change.removed
        ext.setdefault("removedDateTime", policy.now)  # first seen, kept across replays
    else:
        _apply_properties(ext, change, policy)
        ext.pop("removedReason", None)
        ext.pop("removedDateTime", None)
        if policy.full_round is not None:
            ext["fullSyncDateTime"] = policy.full_round
    active = doc.get("active")
    new_active = active
    if mode == "off":
        ext.pop("deprovisioned", None)
    else:
        gone = "removedReason" in ext or ext.get("accountEnabled") is False
        ext["deprovisioned"] = gone
        if gone and mode == "disable" and active is not False:
            new_active, ext["disabledBySync"] = False, True
    if not ext.get("deprovisioned") and ext.get("disabledBySync"):
        # Only what the sync disabled is re-enabled: a user Entra disabled stays disabled.
        ext.pop("disabledBySync")
        new_active = True
    comparable = {k: v for k, v in ext.items() if k != "syncedDateTime"}
    if comparable == {k: v for k, v in old.items() if k != "syncedDateTime"} and (
        new_active == active
    ):
        return None
    out = dict(doc)
    ext["syncedDateTime"] = policy.now
    out[EXT] = ext
    if new_active != active:
        out["active"] = new_active
    out["meta"] = {**doc.get("meta", {}), "lastModified": policy.now}
    return out


def _apply_properties(ext: dict[str, Any], change: Change, policy: Policy) -> None:
    full = policy.full_round is not None or policy.snapshot
    for name in policy.config.properties:
        if name in change.properties:
            value = _clean(change.properties[name])
            if value is None:
                ext.pop(name, None)
            else:
                ext[name] = value
        elif full:
            ext.pop(name, None)
    if policy.config.tracks_manager:
        manager = change.manager
        if manager is UNCHANGED and full:
            manager = None
        if manager is not UNCHANGED:
            if manager is None:
                ext.pop("managerId", None)
            else:
                ext["managerId"] = manager
    elif "managerId" in ext:
        ext.pop("managerId")  # manager no longer selected: do not keep a stale value


def _clean(value: Any) -> Any:
    """Graph's value as stored: null members of complex values dropped, empty means unset
    (SCIM: "unassigned" attributes are absent, RFC 7643 §2.5)."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None and not k.startswith("@")}
    if isinstance(value, list):
        value = [v for v in value if v is not None]
    return None if value in ({}, [], "") else value
