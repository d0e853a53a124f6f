"""Evaluation of filters over stored resource documents: ``compile_filter`` turns a filter into a
predicate, resolving every attribute path through the :class:`~scim_core.schema.ResourceType`
once, not per resource. The semantics chosen where the RFC is silent are listed in
:mod:`scim_core.filter`."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from scim_core.errors import InvalidFilter
from scim_core.filter.nodes import (
    NUMBER,
    ORDER_OPS,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
)
from scim_core.schema import Attribute, ResourceType

# --- evaluation -------------------------------------------------------------------------------

Matcher = Callable[[Mapping[str, Any]], bool]
_Getter = Callable[[Mapping[str, Any]], list[Any]]
_MISSING: Any = object()


def _get(d: Mapping[str, Any], name: str) -> Any:
    """``d[name]`` with the name matched case-insensitively (RFC 7643 §2.1); None if absent."""
    v = d.get(name, _MISSING)
    if v is not _MISSING:
        return v
    low, n = name.lower(), len(name)
    for k, v in d.items():
        if len(k) == n and k.lower() == low:
            return v
    return None


def _values(v: Any, sub: str | None) -> list[Any]:
    """The non-null values at ``v`` (one or a list), or at ``sub`` of each complex value."""
    if sub is not None:
        items = v if isinstance(v, list) else (v,)
        v = [_get(x, sub) for x in items if isinstance(x, dict)]
    elif not isinstance(v, list):
        return [] if v is None else [v]
    return [x for x in v if x is not None]


def _present(v: Any) -> bool:
    """RFC 7644 §3.4.2.2 ``pr``: non-null, non-empty; a complex value with a present sub-value."""
    if isinstance(v, dict):
        return any(_present(x) for x in v.values())
    if isinstance(v, list):
        return any(_present(x) for x in v)
    return v is not None and v != ""


def _datetime(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _number(v: Any) -> float | int | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and NUMBER.fullmatch(v.strip()):
        return float(v) if any(c in v for c in ".eE") else int(v)
    return None


def _boolean(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    # Stored documents may hold "true"/"false" strings (Entra sends them in PATCH values).
    return {"true": True, "false": False}.get(v.lower()) if isinstance(v, str) else None


# "ne" is "not eq": the caller negates the whole any() (module docstring).
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.eq,
    "co": operator.contains,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _text(c: Compare) -> str:
    if isinstance(c.value, str):
        return c.value
    # A bare literal against a string attribute compares by its text (Entra: externalId eq 123).
    return c.raw if c.raw is not None else json.dumps(c.value)


def _predicate(c: Compare, target: Attribute) -> Callable[[Any], bool]:
    """A test of one stored scalar against ``c``'s operand, typed by the target attribute."""
    op, fn = c.op, _OPS[c.op]
    kind = target.type
    if op in ORDER_OPS and kind in ("boolean", "binary"):
        raise InvalidFilter(
            f"'{op}' is not defined for {kind} attribute {target.name!r} (RFC 7644 §3.4.2.2)"
        )
    if kind == "boolean":
        b = _boolean(c.value)
        return (lambda v: _boolean(v) == b) if b is not None and op in ("eq", "ne") else _never
    if kind in ("integer", "decimal"):
        n = _number(c.value)
        return (
            (lambda v: (x := _number(v)) is not None and fn(x, n))
            if n is not None and op not in ("co", "sw", "ew")
            else _never
        )
    if kind == "dateTime" and op not in ("co", "sw", "ew"):
        d = _datetime(c.value)
        if d is None:
            raise InvalidFilter(f"{c.value!r} is not an xsd:dateTime for {target.name!r}")
        return lambda v: (x := _datetime(v)) is not None and fn(x, d)
    if kind == "complex":
        return _never  # no ``value`` sub-attribute to stand for it
    text = _text(c)
    if target.case_exact:
        return lambda v: isinstance(v, str) and fn(v, text)
    folded = text.casefold()
    return lambda v: isinstance(v, str) and fn(v.casefold(), folded)


# ``schemas`` is on every resource (RFC 7643 §3) but in no schema definition; URNs compare
# case-insensitively (RFC 8141 §3.1 for the "urn" prefix and NID; the lenient reading for the rest).
_SCHEMAS = Attribute("schemas", "reference", multi_valued=True)


def _never(_: Any) -> bool:
    return False


class _Scope:
    """Resolves attribute paths to getters: over a resource, or within one complex value."""

    def __init__(
        self, rtype: ResourceType, parent: Attribute | None = None, strict: bool = True
    ) -> None:
        self.rtype, self.parent, self.strict = rtype, parent, strict

    def _undefined(self, path: AttrPath) -> tuple[_Getter, Attribute | None]:
        """A path no schema of the resource type defines: RFC 7644 §3.4.2.2 makes a filter
        over an unknown attribute an ``invalidFilter`` error (``PartitionKey ne ""`` must not
        quietly match every user). Lenient scopes (a root search over types of which only some
        define it, §3.4.3) treat it as unassigned."""
        if self.strict:
            where = f"{self.parent.name!r} of " if self.parent is not None else ""
            raise InvalidFilter(
                f"{str(path)!r} is not an attribute of {where}{self.rtype.name} resources "
                "(RFC 7644 §3.4.2.2)"
            )
        return (lambda d: []), None

    def resolve(self, path: AttrPath, compare: bool) -> tuple[_Getter, Attribute | None]:
        if self.parent is not None:
            sub = self.parent.sub(path.name)
            if sub is None or path.sub is not None or path.urn is not None:
                return self._undefined(path)
            return (lambda d: _values(_get(d, sub.name), None)), sub
        rt = self.rtype
        if path.urn is None and path.sub is None and path.name.lower() == "schemas":
            return (lambda d: _values(_get(d, "schemas"), None)), _SCHEMAS  # RFC 7644 §3.4.2.2
        found = rt.resolve(path.urn, path.name, path.sub)
        if found is None and path.urn is None:
            # Entra sends bare ``manager``: fall back to the extensions, in declared order.
            found = next(
                (r for s, _ in rt.extensions if (r := rt.resolve(s.id, path.name, path.sub))), None
            )
        if found is None:
            return self._undefined(path)
        attr, target = found.attribute, found.target
        sub_name = found.sub.name if found.sub else None
        if compare and sub_name is None and attr.is_complex and (v := attr.sub("value")):
            sub_name, target = v.name, v  # RFC 7644 §3.4.2.2: members eq "u" means members.value
        urn, name = found.urn, attr.name
        if urn is None:
            return (lambda d: _values(_get(d, name), sub_name)), target

        def in_extension(d: Mapping[str, Any]) -> list[Any]:
            ext = _get(d, urn)
            return _values(_get(ext, name), sub_name) if isinstance(ext, dict) else []

        return in_extension, target

    def compile(self, f: Filter) -> Matcher:
        if isinstance(f, (And, Or)):
            parts, kind = [], type(f)
            stack: list[Filter] = [f]
            while stack:  # flatten chains: no recursion proportional to the number of terms
                node = stack.pop()
                if type(node) is kind:
                    stack += [node.right, node.left]
                else:
                    parts.append(self.compile(node))
            if len(parts) == 2:  # the common case (Entra): skip the generator
                a, b = parts
                return (lambda d: a(d) and b(d)) if kind is And else (lambda d: a(d) or b(d))
            if kind is And:
                return lambda d: all(p(d) for p in parts)
            return lambda d: any(p(d) for p in parts)
        if isinstance(f, Not):
            inner = self.compile(f.inner)
            return lambda d: not inner(d)
        if isinstance(f, Present):
            get, _ = self.resolve(f.path, compare=False)
            return lambda d: any(map(_present, get(d)))
        if isinstance(f, ValuePath):
            get, attr = self.resolve(f.path, compare=False)
            if attr is None:
                return _never
            if not attr.is_complex or f.path.sub:
                raise InvalidFilter(f"'{f.path}[...]' needs a complex attribute")
            inner = _Scope(self.rtype, attr, self.strict).compile(f.filter)
            return lambda d: any(inner(x) for x in get(d) if isinstance(x, dict))
        get, target = self.resolve(f.path, compare=True)
        if f.value is None:  # RFC 7643 §2.5: null is unassigned; only eq/ne can test for it
            want = f.op == "ne"
            if f.op not in ("eq", "ne"):
                return _never
            return lambda d: any(map(_present, get(d))) == want
        test = _predicate(f, target) if target is not None else _never
        if f.op == "ne":
            return lambda d: not any(map(test, get(d)))
        return lambda d: any(map(test, get(d)))


def compile_filter(f: Filter, rtype: ResourceType, *, strict: bool = True) -> Matcher:
    """A predicate over resource documents of ``rtype``; raises :class:`InvalidFilter` for an
    attribute ``rtype`` does not define (unless not ``strict``) and for operator/type
    combinations the RFC forbids. Compile once, apply to many resources."""
    return _Scope(rtype, strict=strict).compile(f)


def compile_value_filter(f: Filter, attr: Attribute, rtype: ResourceType) -> Matcher:
    """A predicate over one value of complex ``attr``: the ``[...]`` of a PATCH path (§3.5.2)."""
    if not attr.is_complex:
        raise InvalidFilter(f"'{attr.name}[...]' needs a complex attribute")
    return _Scope(rtype, attr).compile(f)


# Keyed by identity, not equality: Compare(p, "eq", 1) == Compare(p, "eq", True) in Python.
_CACHE: dict[tuple[int, int, bool], tuple[Filter, ResourceType, Matcher]] = {}


def compiled(f: Filter, rtype: ResourceType, *, strict: bool = True) -> Matcher:
    """``compile_filter`` through a cache of the last filters seen, so looping over resources
    with one parsed filter compiles it once (and checking a filter up front costs nothing
    later)."""
    key = (id(f), id(rtype), strict)
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not f or hit[1] is not rtype:
        if len(_CACHE) >= 64:
            _CACHE.clear()
        hit = _CACHE[key] = (f, rtype, compile_filter(f, rtype, strict=strict))
    return hit[2]


def matches(
    f: Filter, resource: Mapping[str, Any], rtype: ResourceType, *, strict: bool = True
) -> bool:
    """Whether ``resource`` matches ``f`` (compiled once per filter, :func:`compiled`)."""
    return compiled(f, rtype, strict=strict)(resource)
