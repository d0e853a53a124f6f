"""PATCH (RFC 7644 §3.5.2): apply a PatchOp message to a resource document.

:func:`apply_patch` is pure: it returns a new document and, for groups, the membership change;
the input is never mutated (values are copied on write, so untouched attributes are shared).

Both of Microsoft Entra's dialects work (ENTRA.md "PATCH: two dialects"; Microsoft Learn, "Known
issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user provisioning
service"). The Entra rules, each also marked where it happens:

- op names are case-insensitive (``Add``, ``Replace``, ``Remove``);
- ``"False"``/``"True"`` strings are booleans (:mod:`scim_core.values`);
- a filtered path whose filter matches no value *creates* the value the filter describes on
  add/replace (``emails[type eq "work"].value``), and later operations of the same request find
  it through the same filter, so several ``addresses[type eq "work"].x`` ops build one address;
- the enterprise ``manager`` may be a plain id string, ``""`` clears it, ``path: "manager"``
  without the URN names it, ``[{"value": id}]`` is accepted (:mod:`scim_core.values`);
- ``remove members`` with a value removes only the listed members, never the whole group;
  ``replace members`` sets exactly the listed ones;
- read-only attributes (``id``, ``meta``, ``groups``, every ``mutability: readOnly``) in a path
  or value are ignored silently, as is the write-only ``password`` (never stored);
- a path-less value's keys may be dotted or full-URN attribute paths (``aadOptscim062020``).

Choices where the RFC leaves room: a message without ``schemas`` is accepted (Entra always
sends it; a wrong one is ``invalidSyntax``); structural errors of the message are
``invalidSyntax``; an unknown attribute, in a path or as a key of a path-less value, is
``invalidPath`` naming it; ``remove`` with a filter matching nothing is a no-op (idempotent
retries); unknown sub-attributes inside a complex value are dropped. Stored documents spell
attribute names as the schema does (``resource.read_input`` guarantees it).
"""

from scim_core.patch.message import PATCH_OP_SCHEMA
from scim_core.patch.patcher import PatchResult, apply_patch

__all__ = ["PATCH_OP_SCHEMA", "PatchResult", "apply_patch"]
