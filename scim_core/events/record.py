"""The event producer: the one outbox row (queue ``ev``) a committed change writes.

One change, one event (RFC 8417 §2.2: a SET's ``events`` claim may hold several event URIs
when they describe the same state change, so a PATCH that disables a user is one SET with
``patch`` and ``deactivate``). The URIs are RFC 9967's (§2.4):

==========================  ================================================================
change                      events
==========================  ================================================================
create                      ``prov:create:notice`` (``attributes``) or ``:full`` (``data``)
PUT                         ``prov:put:notice`` / ``:full``
PATCH (members included)    ``prov:patch:notice`` / ``:full``
``active`` true -> false    ``prov:deactivate`` besides the put/patch event
``active`` false -> true    ``prov:activate`` besides the put/patch event
delete                      ``prov:delete``
==========================  ================================================================

``notice`` events name the attributes that changed (top-level names; an extension's attributes
as ``<schema URN>:<name>``), never their values. ``full`` events carry the resource as stored
(no password is ever stored). A group is stored without its members (it may have 100,000), so a
group change that touches members is sent as a notice naming ``members`` even in full mode: the
receiver reads them with ``GET /Groups/{id}?attributes=members``. A full event whose resource
is too large for an event row falls back to a notice as well.

The row holds what the SET needs but its keys and times: ``jti`` and ``iat`` come from the row's
key when it is delivered (scim_core/events/tokens.py), so the row is written before the store
has assigned the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scim_core.outbox import ChangeRecord
from scim_core.store.protocol import Outbox

#: The outbox queue of events.
EVENTS = "ev"
PREFIX = "urn:ietf:params:scim:event:prov:"
CREATE, PUT, PATCH = "create", "put", "patch"
DELETE = PREFIX + "delete"
ACTIVATE = PREFIX + "activate"
DEACTIVATE = PREFIX + "deactivate"
#: Every event URI this service can send, for ServiceProviderConfig (RFC 9967 §3).
NOTICE_URIS = (
    *(f"{PREFIX}{kind}:notice" for kind in (CREATE, PUT, PATCH)),
    DELETE,
    ACTIVATE,
    DEACTIVATE,
)
FULL_URIS = (
    *(f"{PREFIX}{kind}:full" for kind in (CREATE, PUT, PATCH)),
    DELETE,
    ACTIVATE,
    DEACTIVATE,
)
#: A full event's data above this many bytes of JSON is sent as a notice instead (an event row
#: shares its transaction, at most 4 MiB, with the resource it describes).
MAX_FULL_BYTES = 256 * 1024
_PLAIN = {"id", "meta", "schemas"}
MODES = ("off", "notice", "full")


class EventProducer:
    """The producer of the ``ev`` rows; ``mode`` is the ``SCIM_EVENTS`` setting."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"SCIM_EVENTS is one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def uris(self) -> tuple[str, ...]:
        return () if not self.enabled else FULL_URIS if self.mode == "full" else NOTICE_URIS

    def __call__(self, record: ChangeRecord) -> Sequence[Outbox]:
        if not self.enabled:
            return ()
        return [Outbox(EVENTS, None, self.body(record))]

    def body(self, record: ChangeRecord) -> dict[str, Any]:
        events: dict[str, Any] = {}
        if record.kind == "delete":
            events[DELETE] = {}
        else:
            after = record.after or {}
            before = record.before if record.kind != "create" else None
            names = changed(before, after)
            touches_members = not record.members.empty
            if touches_members and "members" not in names:
                names = sorted([*names, "members"])
            data = None if touches_members else self._data(after)
            if data is not None:
                events[f"{PREFIX}{record.kind}:full"] = {"data": data}
            else:
                events[f"{PREFIX}{record.kind}:notice"] = {"attributes": names}
            flip = active_flip(before, after) if record.rtype == "User" else None
            if flip is not None:
                events[flip] = {}
        body: dict[str, Any] = {
            "type": record.rtype,
            "id": record.id,
            "events": events,
            "origin": record.origin,
            "txn": record.txn,
        }
        external = (record.after or record.before or {}).get("externalId")
        if isinstance(external, str):
            body["externalId"] = external
        return body

    def _data(self, after: dict[str, Any]) -> dict[str, Any] | None:
        if self.mode != "full":
            return None
        text = json.dumps(after, ensure_ascii=False)
        return after if len(text.encode("utf-8", "surrogatepass")) <= MAX_FULL_BYTES else None


def changed(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """The names of the attributes that differ (all present ones when ``before`` is None): an
    extension's attributes as ``<URN>:<name>``; ``id``, ``meta`` and ``schemas`` left out."""
    old = before or {}
    names: list[str] = []
    for name in sorted((set(old) | set(after)) - _PLAIN):
        was, now = old.get(name), after.get(name)
        if was == now:
            continue
        if name.startswith("urn:") and isinstance(was or now, dict):
            was_d = was if isinstance(was, dict) else {}
            now_d = now if isinstance(now, dict) else {}
            names += [
                f"{name}:{sub}"
                for sub in sorted(set(was_d) | set(now_d))
                if was_d.get(sub) != now_d.get(sub)
            ]
        else:
            names.append(name)
    return names


def active_flip(before: dict[str, Any] | None, after: dict[str, Any]) -> str | None:
    """``deactivate`` when ``active`` turns false, ``activate`` when it turns true again (an
    absent ``active`` counts as true: RFC 7643 §4.1.1 leaves it to the service; Entra sends it
    on every create)."""
    if before is None:
        return None
    was, now = before.get("active", True) is not False, after.get("active", True) is not False
    if was and not now:
        return DEACTIVATE
    if now and not was:
        return ACTIVATE
    return None
