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

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from scim_core.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from scim_core.filter import (
    And,
    AttrPath,
    Compare,
    Filter,
    Or,
    ValuePath,
    compile_filter,
    parse_path,
)
from scim_core.resource import read_members
from scim_core.schema import Attribute, ResourceType
from scim_core.store import Member, MemberChange
from scim_core.values import (
    coerce_values,
    is_assigned,
    is_primary,
    merge_complex,
    settle_primary,
)

__all__ = ["PATCH_OP_SCHEMA", "PatchResult", "apply_patch"]

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_OPS = frozenset({"add", "replace", "remove"})
_STRINGS = frozenset({"string", "reference", "binary"})


@dataclass
class PatchResult:
    doc: dict[str, Any]
    """The new document (the input is not mutated)."""
    members: MemberChange
    """Group membership changes from operations on ``members`` (empty for users)."""
    changed: bool
    """Whether anything changed: the document, or membership."""


@dataclass(frozen=True)
class _Target:
    """A resolved path: the attribute (in extension ``urn``, None = core/common), an optional
    value filter on a multi-valued complex attribute, and an optional sub-attribute."""

    urn: str | None
    attr: Attribute
    value_filter: Filter | None = None
    sub: Attribute | None = None


def apply_patch(rtype: ResourceType, doc: dict[str, Any], body: Any) -> PatchResult:
    """Apply the PatchOp ``body`` to ``doc``; raises a :class:`ScimError` subclass if any
    operation fails (then nothing is applied: the caller stores nothing)."""
    patcher = _Patcher(rtype, doc)
    for index, (op, path, value) in enumerate(_operations(body)):
        try:
            patcher.apply(op, path, value)
        except ScimError as exc:
            where = f"Operations[{index}] ({op} {(path or '<no path>')[:100]})"
            raise type(exc)(f"{where}: {exc.detail}") from exc
    new = patcher.finish()
    members = patcher.members.change()
    return PatchResult(new, members, changed=new != doc or not members.empty)


def _operations(body: Any) -> list[tuple[str, str | None, Any]]:
    """The operations of a PatchOp message as ``(op, path, value)``; ``value`` is ``...``
    when the operation has none (distinct from an explicit null)."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a PATCH body must be a PatchOp object (RFC 7644 §3.5.2)")
    fields = {k.lower(): v for k, v in body.items()}  # attribute names are case-insensitive
    schemas = fields.get("schemas")
    # Lenient: a body without "schemas" is taken as a PatchOp (Entra always sends it).
    if schemas is not None and not (
        isinstance(schemas, list)
        and any(isinstance(s, str) and s.lower() == PATCH_OP_SCHEMA.lower() for s in schemas)
    ):
        raise InvalidSyntax(f"'schemas' must contain {PATCH_OP_SCHEMA!r}")
    ops = fields.get("operations")
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntax("'Operations' must be a non-empty list of operations")
    out: list[tuple[str, str | None, Any]] = []
    for index, raw in enumerate(ops):
        if not isinstance(raw, dict):
            raise InvalidSyntax(f"Operations[{index}] must be an object")
        o = {k.lower(): v for k, v in raw.items()}
        op = o.get("op")
        # Case-insensitive: Entra legacy dialect sends "Add", despite RFC 7644 §3.5.2.
        if not isinstance(op, str) or op.lower() not in _OPS:
            raise InvalidSyntax(
                f"Operations[{index}].op must be add, replace or remove, got {op!r:.40}"
            )
        path = o.get("path")
        if path is not None and not isinstance(path, str):
            raise InvalidPath(f"Operations[{index}].path must be a string")
        out.append((op.lower(), path.strip() or None if path else None, o.get("value", ...)))
    return out


class _Members:
    """Membership changes of a request, composed in order into one :class:`MemberChange`."""

    def __init__(self) -> None:
        self.replace_all: dict[str, Member] | None = None
        self.add: dict[str, Member] = {}
        self.remove: dict[str, None] = {}  # an ordered set

    def added(self, members: Iterable[Member]) -> None:
        for m in members:
            if self.replace_all is not None:
                self.replace_all[m.value] = m
            else:
                self.remove.pop(m.value, None)
                self.add[m.value] = m

    def removed(self, ids: Iterable[str]) -> None:
        for i in ids:
            if self.replace_all is not None:
                self.replace_all.pop(i, None)
            else:
                self.add.pop(i, None)  # added earlier in this request, maybe present before
                self.remove[i] = None

    def replaced(self, members: Iterable[Member]) -> None:
        self.replace_all = {m.value: m for m in members}
        self.add.clear()
        self.remove.clear()

    def change(self) -> MemberChange:
        if self.replace_all is not None:
            return MemberChange(replace_all=tuple(self.replace_all.values()))
        return MemberChange(add=tuple(self.add.values()), remove=tuple(self.remove))


class _Patcher:
    def __init__(self, rtype: ResourceType, doc: dict[str, Any]) -> None:
        self.rtype = rtype
        self.doc = dict(doc)  # shallow: every write below copies what it changes
        self.copied: set[str] = set()  # extension containers already copied
        self.members = _Members()
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
                    self.apply_target(op, _Target(ext.id, attr), None)
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

    def resolve(self, path: str) -> _Target | None:
        """Resolve a path; None for one that names something never patched (``schemas``)."""
        parsed = parse_path(path)
        urn, name = parsed.attr.urn, parsed.attr.name
        if urn is None and name.lower() == "schemas":
            return None
        if urn is not None and not self.rtype.knows_urn(urn):
            raise InvalidPath(
                f"unknown schema URN in {path!r}: {self.rtype.name} resources "
                f"have {', '.join(self.rtype.schema_urns())}"
            )
        found = self.rtype.resolve(urn, name)
        if found is None and urn is None:
            # Entra: bare "manager" names the enterprise attribute (ENTRA.md "Manager").
            found = next(
                (r for s, _ in self.rtype.extensions if (r := self.rtype.resolve(s.id, name))), None
            )
        if found is None:
            where = urn or self.rtype.core.id
            raise InvalidPath(f"{name!r} is not an attribute of {where} (path {path!r})")
        attr = found.attribute
        sub_name = parsed.attr.sub or parsed.sub
        sub = attr.sub(sub_name) if sub_name else None
        if sub_name and sub is None:
            raise InvalidPath(f"{sub_name!r} is not a sub-attribute of {attr.name!r}")
        if parsed.value_filter is not None and not (attr.multi_valued and attr.is_complex):
            raise InvalidPath(
                f"a value filter needs a multi-valued complex attribute, {attr.name!r} is not one"
            )
        return _Target(found.urn, attr, parsed.value_filter, sub)

    def container(self, urn: str | None) -> dict[str, Any]:
        if urn is None:
            return self.doc
        if urn not in self.copied:
            self.copied.add(urn)
            current = self.doc.get(urn)
            self.doc[urn] = dict(current) if isinstance(current, dict) else {}
        return self.doc[urn]  # type: ignore[no-any-return]

    def apply_target(self, op: str, t: _Target, value: Any) -> None:
        for a in (t.attr, t.sub):
            if a is not None and a.mutability in ("readOnly", "writeOnly"):
                return  # ENTRA.md: read-only attributes in PATCH are ignored silently
        if self.is_group and t.urn is None and t.attr.name == "members":
            self.apply_members(op, t, value)
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
    def written(self, op: str, t: _Target, before: Any, value: Any) -> Any:
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

    def written_filtered(self, op: str, t: _Target, before: Any, value: Any) -> Any:
        items = _list(before)
        match = self.matcher(t)
        hits = [i for i, el in enumerate(items) if match(el)]
        if not hits and value is None:
            return before  # nothing to unassign
        if not hits:
            # Entra: create the value the filter describes (ENTRA.md, "Filtered paths into a
            # multi-valued item that does not exist yet"); RFC 7644 §3.5.2.3 says noTarget.
            # Later operations of the request find it through the same filter.
            described = _described(t.attr, t.value_filter)  # type: ignore[arg-type]
            if described is None:
                raise NoTarget(
                    f"no value of {t.attr.name!r} matches the filter, and the filter "
                    f"does not describe one to create"
                )
            items.append({})
            hits = [len(items) - 1]
        else:
            described = {}
        marked = set()
        for i in hits:
            el = dict(items[i] or described)
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

    def matcher(self, t: _Target) -> Callable[[Any], bool]:
        """Whether one element of ``t.attr`` matches the value filter (the filter module
        evaluates resources, so each element is wrapped as a one-element resource)."""
        vp = ValuePath(AttrPath(t.urn, t.attr.name), t.value_filter)  # type: ignore[arg-type]
        match = compile_filter(vp, self.rtype)
        name, urn = t.attr.name, t.urn
        if urn is None:
            return lambda el: isinstance(el, dict) and match({name: [el]})
        return lambda el: isinstance(el, dict) and match({urn: {name: [el]}})

    # --- remove -----------------------------------------------------------------------------
    def removed(self, t: _Target, before: Any, value: Any) -> Any:
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

    # --- group members ----------------------------------------------------------------------
    def apply_members(self, op: str, t: _Target, value: Any) -> None:
        """Members are rows, not document content: record the change (ENTRA.md "PATCH")."""
        if t.sub is not None:
            raise InvalidPath("a member's sub-attributes cannot be patched: add or remove members")
        if t.value_filter is not None:
            if op != "remove":
                raise InvalidPath("add/replace take path 'members' with a list of members")
            self.members.removed(_filter_ids(t.value_filter))
        elif op == "add":
            self.members.added(read_members(value))
        elif op == "replace":  # Entra: "set exactly these"
            self.members.replaced(read_members(value) if value is not None else ())
        elif value is None:
            self.members.replaced(())  # RFC 7644 §3.5.2.2: remove them all
        else:  # Entra legacy dialect: remove only the listed ids, never the whole group
            self.members.removed(m.value for m in read_members(value))


def _filter_ids(f: Filter) -> list[str]:
    """The ids of ``members[value eq "a" or value eq "b"]``: the only member filters we can
    apply without reading a group's member rows."""
    if isinstance(f, Or):
        return _filter_ids(f.left) + _filter_ids(f.right)
    if (
        isinstance(f, Compare)
        and f.op == "eq"
        and f.path.name.lower() == "value"
        and f.path.sub is None
        and f.value is not None
    ):
        return [f.value if isinstance(f.value, str) else f.raw or str(f.value)]
    raise InvalidFilter(
        "a members filter in PATCH must be 'value eq \"<id>\"' (or several joined by 'or')"
    )


# --- helpers --------------------------------------------------------------------------------


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


def _described(attr: Attribute, f: Filter) -> dict[str, Any] | None:
    """The element a filter of ``eq`` comparisons joined by ``and`` describes, or None."""
    terms = _conjuncts(f)
    out: dict[str, Any] = {}
    for term in terms:
        if not (
            isinstance(term, Compare)
            and term.op == "eq"
            and term.value is not None
            and term.path.sub is None
            and term.path.urn is None
        ):
            return None
        sub = attr.sub(term.path.name)
        if sub is None or sub.mutability == "readOnly":
            return None
        raw = term.raw if term.raw is not None and sub.type in _STRINGS else term.value
        out[sub.name] = coerce_values(sub, raw)
    return out


def _conjuncts(f: Filter) -> list[Filter]:
    return [*_conjuncts(f.left), *_conjuncts(f.right)] if isinstance(f, And) else [f]


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
