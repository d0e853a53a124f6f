"""How Entra's provisioning names a B2B guest, and how to find that guest in Graph again.

Microsoft Learn, "How Application Provisioning works in Microsoft Entra ID", B2B (guest) users
(https://learn.microsoft.com/en-us/entra/identity/app-provisioning/how-provisioning-works):
a guest's userPrincipalName is ``alias_theirdomain#EXT#@yourdomain``; when userPrincipalName is
mapped as a source attribute, "the #EXT# and your domain is stripped from the
userPrincipalName, so only their original alias@theirdomain is used for matching or
provisioning". So with ``userPrincipalName -> userName`` a guest's SCIM ``userName`` is
``alias@theirdomain``, which is not Graph's ``userPrincipalName`` (nor a key ``GET /users/{key}``
accepts). The two directions of the join:

- Graph user -> SCIM userName (delta): undo the rewrite. ``alias_theirdomain`` joined alias and
  domain with ``_`` in place of ``@``; a DNS domain name has no ``_`` (host names are letters,
  digits and hyphens), so the **last** ``_`` is the one that stood for ``@`` (the alias may hold
  ``_`` of its own). The guest's ``mail`` and ``otherMails`` are further candidates: for an
  invited guest they usually hold the same ``alias@theirdomain``.
- SCIM userName -> Graph user (reconciliation): redo the rewrite and ask Graph for the UPN that
  starts with it, ``startswith(userPrincipalName,'alias_theirdomain#EXT#@')`` (Microsoft Learn,
  "user resource type": userPrincipalName supports ``$filter`` with ``startsWith``). The prefix
  ends in ``#EXT#@``, so it names one guest whatever the tenant's domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The marker Entra puts into a guest's UPN (case as Microsoft writes it; compared casefolded).
EXT_MARKER = "#EXT#@"


def is_guest_upn(upn: str) -> bool:
    return EXT_MARKER.casefold() in upn.casefold()


def provisioned_user_name(upn: str) -> str | None:
    """``alias_theirdomain#EXT#@yourdomain`` -> ``alias@theirdomain``; None for a member UPN or
    a guest UPN without the ``_`` that stood for ``@``."""
    at = upn.casefold().find(EXT_MARKER.casefold())
    if at <= 0:
        return None
    local = upn[:at]
    cut = local.rfind("_")
    if cut <= 0 or cut == len(local) - 1:
        return None
    return f"{local[:cut]}@{local[cut + 1 :]}"


def guest_upn_prefix(user_name: str) -> str | None:
    """``alias@theirdomain`` -> ``alias_theirdomain#EXT#@``, the start of the guest's UPN in any
    tenant; None when the userName is no e-mail address."""
    alias, at, domain = user_name.rpartition("@")
    if not at or not alias or not domain:
        return None
    return f"{alias}_{domain}{EXT_MARKER}"


def candidate_user_names(upn: str, properties: Mapping[str, Any]) -> list[str]:
    """SCIM userNames a guest may have been provisioned under, best first, without repeats
    (compared casefolded, as the userName index is)."""
    candidates: list[str] = []
    stripped = provisioned_user_name(upn)
    if stripped is not None:
        candidates.append(stripped)
    mail = properties.get("mail")
    if isinstance(mail, str):
        candidates.append(mail)
    other = properties.get("otherMails")
    if isinstance(other, Iterable) and not isinstance(other, str):
        candidates.extend(m for m in other if isinstance(m, str))
    seen: set[str] = set()
    unique: list[str] = []
    for name in candidates:
        key = name.casefold()
        if name and key not in seen and key != upn.casefold():
            seen.add(key)
            unique.append(name)
    return unique


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled (OData ABNF, ``SQUOTE-in-string``)."""
    return "'" + value.replace("'", "''") + "'"
