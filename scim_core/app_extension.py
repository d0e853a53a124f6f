"""The app-owned extension ``urn:scimfunc:schemas:extension:app:1.0:User``: its schema, and
who may change it.

The line-of-business app keeps data of its own on a user here (docs/app-guide.md). The schema
is data like every other (``schemas/app_user.json``); its attributes are the operator's,
declared in ``SCIM_APP_EXTENSION_ATTRIBUTES`` as RFC 7643 §7 attribute definitions, so the
service validates, filters and projects them like any attribute. With none declared (the
default) the extension is not published at all: an empty extension holds nothing, and a SCIM
client that saw it announced would try to write it (scim2-tester does, with Entra's token) and
never read its write back.

Ownership is split by principal, and enforced on the document a write would store (so every
request form is covered: POST, PUT, each PATCH dialect, path-less PATCH values, Bulk):

- **Entra's credentials** never change the extension. Its values in their requests are
  *ignored*, not refused: to Entra the extension is effectively ``readOnly``, and this service
  ignores read-only input from Entra silently (ENTRA.md "Create", "PATCH"; RFC 7644 §3.5.1 "any
  values provided [for readOnly attributes] SHALL be ignored"). A refusal would fail that user
  in every provisioning cycle and, repeated, quarantine the job, over a mapping the admin may
  not even know points here. A PUT from Entra keeps the app's values (it never sends them).
- **The app** (scope ``app:write``) changes the extension and nothing else: a write that would
  change any other attribute is 403 (RFC 7644 §3.12). A PUT from the app asserts the
  extension; the attributes it leaves out are "not asserted" (RFC 7644 §3.5.1) and kept, and
  the ones it does send must equal what is stored (so GET, change the extension, PUT back
  works).
"""

from __future__ import annotations

import json
import re
from typing import Any

from scim_core.errors import Forbidden
from scim_core.schema import APP_USER_SCHEMA, Attribute, ResourceType, Schema

_TYPES = frozenset(
    {"string", "boolean", "decimal", "integer", "dateTime", "reference", "binary", "complex"}
)
#: RFC 7643 §2.1: ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA.
_ATTRNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
#: Keys of a stored document that are never the client's to compare.
_SERVER_KEYS = frozenset({"id", "meta"})


def app_user_schema(attributes_json: str | None) -> Schema:
    """The extension's schema with the operator's attributes. A malformed declaration is a
    ValueError naming the problem (reported at start-up, never on a request)."""
    base = Schema.load("app_user.json")
    if not attributes_json or not attributes_json.strip():
        return base
    try:
        declared = json.loads(attributes_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"SCIM_APP_EXTENSION_ATTRIBUTES is not JSON: {exc.msg}") from None
    if not isinstance(declared, list):
        raise ValueError("SCIM_APP_EXTENSION_ATTRIBUTES must be a JSON list of attributes")
    attributes = tuple(
        _attribute(item, f"SCIM_APP_EXTENSION_ATTRIBUTES[{i}]") for i, item in enumerate(declared)
    )
    names = [a.name.lower() for a in attributes]
    if len(set(names)) != len(names):
        raise ValueError("SCIM_APP_EXTENSION_ATTRIBUTES names an attribute twice")
    return Schema(base.id, base.name, base.description, attributes)


def _attribute(item: Any, where: str) -> Attribute:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
        raise ValueError(f"{where} must be an object with a 'name'")
    try:
        attribute = Attribute.from_dict(item)
    except (TypeError, AttributeError, KeyError) as exc:
        raise ValueError(f"{where} is not an attribute definition: {exc}") from None
    for a in (attribute, *attribute.sub_attributes):
        if not _ATTRNAME.match(a.name):
            # A dot or a colon in a name would break attribute paths.
            raise ValueError(f"{where}: {a.name!r} is not an attribute name (RFC 7643 §2.1)")
        if a.type not in _TYPES:
            raise ValueError(f"{where}: type {a.type!r} is not a SCIM type (RFC 7643 §2.3)")
        if a.mutability not in ("readWrite", "immutable"):
            # readOnly would be the server's and writeOnly is for secrets: neither fits data
            # the app writes and reads back.
            raise ValueError(f"{where}: mutability must be readWrite or immutable")
    return attribute


def settle(
    rtype: ResourceType,
    app_write: bool,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    replace: bool = False,
) -> dict[str, Any]:
    """The document to store when a request turns ``old`` (None: a create) into ``new``.

    ``app_write``: the request comes from the app's ``app:write`` credential (the router
    marks it); otherwise from Entra's. ``replace``: ``new`` is a PUT body (not a patched copy
    of ``old``)."""
    if rtype.extension(APP_USER_SCHEMA) is None:
        return new
    if not app_write:
        kept = (old or {}).get(APP_USER_SCHEMA)
        out = {k: v for k, v in new.items() if k != APP_USER_SCHEMA}
        if kept:
            out[APP_USER_SCHEMA] = kept
        return out
    if old is None:
        raise Forbidden("the app:write scope does not create resources")
    if replace:
        changed = sorted(
            k
            for k, v in new.items()
            if k not in _SERVER_KEYS and k != APP_USER_SCHEMA and old.get(k) != v
        )
        out = {k: v for k, v in old.items() if k != APP_USER_SCHEMA}
        out.update({k: new[k] for k in _SERVER_KEYS if k in new})
        if new.get(APP_USER_SCHEMA):
            out[APP_USER_SCHEMA] = new[APP_USER_SCHEMA]
    else:
        keys = (set(old) | set(new)) - _SERVER_KEYS - {APP_USER_SCHEMA}
        changed = sorted(k for k in keys if old.get(k) != new.get(k))
        out = new
    if changed:
        raise Forbidden(
            f"the app:write scope changes only {APP_USER_SCHEMA}; this request would change "
            f"{', '.join(repr(k) for k in changed)}, which Microsoft Entra provisions"
        )
    return out


__all__ = ["APP_USER_SCHEMA", "app_user_schema", "settle"]
