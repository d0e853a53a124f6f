"""Applying the operations of a PatchOp to a resource document (RFC 7644 §3.5.2.1-3): add,
replace and remove on every path form, with Entra's dialect rules (listed in
:mod:`scim_core.patch`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim_core.errors import (
    InvalidPath,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from scim_core.filter import AttrPath, ValuePath, compile_filter
from scim_core.patch.members import MemberEdits, apply_members
from scim_core.patch.message import operations
from scim_core.patch.paths import Target, described, resolve_target
from scim_core.schema import Attribute, ResourceType
from scim_core.store import MemberChange
from scim_core.values import (
    coerce_values,
    is_assigned,
    is_primary,
    merge_complex,
    settle_primary,
)


@dataclass
class PatchResult:
    doc: dict[str, Any]
    """The new document (the input is not mutated)."""
    members: MemberChange
    """Group membership changes from operations on ``members`` (empty for users)."""
    changed: bool
    """Whether anything changed: the document, or membership."""


def apply_patch(rtype: ResourceType, doc: dict[str, Any], body: Any) -> PatchResult:
    """Apply the PatchOp ``body`` to ``doc``; raises a :class:`ScimError` subclass if any
    operation fails (then nothing is applied: the caller stores nothing)."""
    patcher = Patcher(rtype, doc)
    for index, (op, path, value) in enumerate(operations(body)):
        try:
            patcher.apply(op, path, value)
        except ScimError as exc:
            where = f"Operations[{index}] ({op} {(path or '<no path>')[:100]})"
            raise type(exc)(f"{where}: {exc.detail}") from exc
    new = patcher.finish()
    members = patcher.members.change()
    return PatchResult(new, members, changed=new != doc or not members.empty)


class Patcher:
    def __init__(self, rtype: ResourceType, doc: dict[str, Any]) -> None:
        self.rtype = rtype
        self.doc = dict(doc)  # shallow: every write below copies what it changes
        self.copied: set[str] = set()  # extension containers already copied
        self.members = MemberEdits()
        self.is_group = rtype.name == "Group"

    def finish(self) -> dict[str, Any]:
        kept = {s.id for s in self.rtype.server_maintained_extensions()}
        for urn in self.copied:  # an extension left without attributes is absent (RFC 7643 §3)
            if self.doc.get(urn) == {} and urn not in kept:
                del self.doc[urn]
        return self.doc

    # --- dispatch ---------------------------------------------------------------------------
    def apply(self, op: str, path: str | None, value: Any) -> None:
        if op == "add" and (value is ... or value is None):
            raise InvalidValue("add needs a value (RFC 7644 §3.5.2.1)")
        if op == "replace" and value is ...:
            raise InvalidValue("replace needs a value (RFC 7644 §3.5.2.3)")
        if path is None:
            if op == "remove":
                raise NoTarget("remove needs a path (RFC 7644 §3.5.2.2)")
            self.apply_object(op, None, value)
            return
        if path.lower() == self.rtype.core.id.lower():
            if op == "remove":
                raise InvalidPath("the core schema cannot be removed")
            self.apply_object(op, None, value)
            return
        ext = self.rtype.extension(path)
        if ext is not None:  # the whole extension: its attributes, or all of them on remove
            maintained = ext in self.rtype.server_maintained_extensions()
            if op == "remove":
                for attr in ext.attributes:
                    self.apply_target(op, Target(ext.id, attr), None)
                if maintained and self.doc.get(ext.id) == {}:
                    del self.doc[ext.id]
            else:
                if maintained:
                    # Every attribute is readOnly, so the value adds nothing, but the extension
                    # itself is now present (scim2-tester PATCHes extensions as a whole and reads
                    # them back); its data stays the server's (e.g. Graph enrichment).
                    self.container(ext.id)
                self.apply_object(op, ext.id, value)
            return
        target = self.resolve(path)
        if target is not None:
            self.apply_target(op, target, None if value is ... else value)

    def apply_object(self, op: str, urn: str | None, value: Any) -> None:
        """A path-less add/replace (or one on an extension URN): each key is an attribute path,
        dotted or full-URN in Entra's aadOptscim062020 dialect (RFC 7644 §3.5.2.1, §3.5.2.3)."""
        if not isinstance(value, dict):
            raise InvalidValue("without a path, the value must be an object of attributes")
        for key, item in value.items():
            low = key.lower()
            if low == "schemas":
                # rendered from the extensions present, never patched; scim2-tester sends it
                # inside an extension's value object too
                continue
            if urn is None and self.rtype.extension(key) is not None:
                self.apply_object(op, self.rtype.extension(key).id, item)  # type: ignore[union-attr]
            elif urn is None and low == self.rtype.core.id.lower():
                self.apply_object(op, None, item)
            else:
                target = self.resolve(f"{urn}:{key}" if urn else key)
                if target is not None:
                    self.apply_target(op, target, item)

    def resolve(self, path: str) -> Target | None:
        return resolve_target(self.rtype, path)

    def container(self, urn: str | None) -> dict[str, Any]:
        if urn is None:
            return self.doc
        if urn not in self.copied:
            self.copied.add(urn)
            current = self.doc.get(urn)
            self.doc[urn] = dict(current) if isinstance(current, dict) else {}
        return self.doc[urn]  # type: ignore[no-any-return]

    def apply_target(self, op: str, t: Target, value: Any) -> None:
        for a in (t.attr, t.sub):
            if a is not None and a.mutability in ("readOnly", "writeOnly"):
                return  # ENTRA.md: read-only attributes in PATCH are ignored silently
        if self.is_group and t.urn is None and t.attr.name == "members":
            apply_members(self.members, op, t, value)
            return
        c = self.container(t.urn)
        name = t.attr.name
        before = c.get(name)
        if op == "remove":
            after = self.removed(t, before, value)
        elif t.value_filter is not None:
            after = self.written_filtered(op, t, before, value)
        else:
            after = self.written(op, t, before, value)
        _check_mutability(t.attr, before, after)
        if is_assigned(after):
            c[name] = after
        else:
            c.pop(name, None)

    # --- add / replace ----------------------------------------------------------------------
    def written(self, op: str, t: Target, before: Any, value: Any) -> Any:
        attr, sub = t.attr, t.sub
        if sub is not None:
            new = coerce_values(sub, value)
            if attr.multi_valued:  # no filter: every value's sub-attribute (as scim2-server)
                items = [
                    _set(dict(el), sub.name, new) for el in _list(before) if isinstance(el, dict)
                ]
                if not items:
                    # RFC 7644 §3.5.2.1: a target that does not exist is added (and a replace of
                    # a missing target is an add, §3.5.2.3): one value holding the sub-attribute,
                    # rather than the client's value silently dropped.
                    items = [{sub.name: new}]
                return settle_primary(items, set(range(len(items))) if new is True else set())
            return _set(_obj(before), sub.name, new)
        if attr.multi_valued:
            items = coerce_values(attr, value)
            start = 0
            if op == "add":  # RFC 7644 §3.5.2.1: add appends; a value already there is kept
                merged, start = _list(before), len(_list(before))
                seen = {_identity(attr, el) for el in merged}
                items = merged + [el for el in items if _identity(attr, el) not in seen]
            fresh = {i for i in range(start, len(items)) if is_primary(items[i])}
            return settle_primary(items, fresh)
        if attr.is_complex and isinstance(value, dict):
            return merge_complex(attr, _obj(before), value)  # RFC 7644 §3.5.2.3: merge
        return coerce_values(attr, value)  # simple value, or the manager shorthand: replaced

    def written_filtered(self, op: str, t: Target, before: Any, value: Any) -> Any:
        items = _list(before)
        match = self.matcher(t)
        hits = [i for i, el in enumerate(items) if match(el)]
        if not hits and value is None:
            return before  # nothing to unassign
        if not hits:
            # Entra: create the value the filter describes (ENTRA.md, "Filtered paths into a
            # multi-valued item that does not exist yet"); RFC 7644 §3.5.2.3 says noTarget.
            # Later operations of the request find it through the same filter.
            element = described(t.attr, t.value_filter)  # type: ignore[arg-type]
            if element is None:
                raise NoTarget(
                    f"no value of {t.attr.name!r} matches the filter, and the filter "
                    f"does not describe one to create"
                )
            items.append({})
            hits = [len(items) - 1]
        else:
            element = {}
        marked = set()
        for i in hits:
            el = dict(items[i] or element)
            if t.sub is not None:
                el = _set(el, t.sub.name, coerce_values(t.sub, value))
            elif isinstance(value, dict):
                el = merge_complex(t.attr, el, value)
            else:
                raise InvalidValue(f"the value for {t.attr.name}[...] must be an object")
            if is_primary(el) and not is_primary(items[i]):
                marked.add(i)
            items[i] = el
        return [el for el in settle_primary(items, marked) if el]

    def matcher(self, t: Target) -> Callable[[Any], bool]:
        """Whether one element of ``t.attr`` matches the value filter (the filter module
        evaluates resources, so each element is wrapped as a one-element resource)."""
        vp = ValuePath(AttrPath(t.urn, t.attr.name), t.value_filter)  # type: ignore[arg-type]
        match = compile_filter(vp, self.rtype)
        name, urn = t.attr.name, t.urn
        if urn is None:
            return lambda el: isinstance(el, dict) and match({name: [el]})
        return lambda el: isinstance(el, dict) and match({urn: {name: [el]}})

    # --- remove -----------------------------------------------------------------------------
    def removed(self, t: Target, before: Any, value: Any) -> Any:
        attr, sub = t.attr, t.sub
        if before is None:
            return None
        if attr.multi_valued:
            before = _list(before)
        if t.value_filter is not None:  # RFC 7644 §3.5.2.2; no match: nothing to do
            match = self.matcher(t)
            if sub is None:
                return [el for el in before if not match(el)]
            return [
                el for el in (_without(el, sub.name) if match(el) else el for el in before) if el
            ]
        if sub is not None:
            if attr.multi_valued:
                return [el for el in (_without(el, sub.name) for el in before) if el]
            return _without(before, sub.name)
        if attr.multi_valued and attr.is_complex and value is not None:
            # Entra legacy: remove with a value removes the listed values only (ENTRA.md).
            drop = [
                _identity(attr, merge_complex(attr, {}, v))
                for v in _list(value)
                if isinstance(v, dict)
            ]
            return [
                el
                for el in before
                if not (isinstance(el, dict) and any(d and d <= _identity(attr, el) for d in drop))
            ]
        return None


def _list(v: Any) -> list[Any]:
    """A copy of a multi-valued attribute's stored value."""
    return list(v) if isinstance(v, list) else [] if v is None else [v]


def _obj(v: Any) -> dict[str, Any]:
    """A copy of a complex attribute's stored value."""
    return dict(v) if isinstance(v, dict) else {}


def _set(obj: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if is_assigned(value):
        obj[key] = value
    else:
        obj.pop(key, None)
    return obj


def _identity(attr: Attribute, el: Any) -> Any:
    """What makes two values of ``attr`` the same value: strings of a caseExact=false
    (sub-)attribute compare case-insensitively (RFC 7643 §2.2)."""

    def fold(a: Attribute | None, v: Any) -> Any:
        return v.casefold() if isinstance(v, str) and a is not None and not a.case_exact else v

    if isinstance(el, dict):
        return frozenset((k, repr(fold(attr.sub(k), v))) for k, v in el.items())
    return repr(fold(attr, el))


def _without(el: Any, key: str) -> Any:
    return {k: v for k, v in el.items() if k != key} if isinstance(el, dict) else el


def _check_mutability(attr: Attribute, before: Any, after: Any) -> None:
    """RFC 7644 §3.5.2: an immutable value, once assigned, does not change; a required
    attribute is not unassigned (RFC 7643 §2.2)."""
    if before == after or not is_assigned(before):
        return
    if attr.mutability == "immutable":
        raise Mutability(f"{attr.name!r} is immutable")
    if attr.required and not is_assigned(after):
        raise Mutability(f"{attr.name!r} is required and cannot be removed")
    if attr.is_complex and not attr.multi_valued and isinstance(before, dict):
        for sub in attr.sub_attributes:
            old = before.get(sub.name)
            changed = _obj(after).get(sub.name) != old
            if sub.mutability == "immutable" and is_assigned(old) and changed:
                raise Mutability(f"'{attr.name}.{sub.name}' is immutable")
