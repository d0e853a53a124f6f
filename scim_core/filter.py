"""SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2): parsing to an AST and evaluation.

``parse_filter`` and ``parse_path`` share one hand-written tokenizer and recursive-descent parser;
``compile_filter`` turns a filter into a predicate over stored resource documents, resolving every
attribute path through the :class:`~scim_core.schema.ResourceType` once, not per resource.

Interop bends (each is also marked where it happens):

* Unquoted values parse (``userName eq john@x.com``, ``externalId eq 123-abc``): a bare word that
  is not ``true``/``false``/``null``/a JSON number is a string, and a bare number or boolean
  compared with a string attribute is compared by its source text. Some Entra docs show such
  filters (ENTRA.md, "Matching queries").
* ``emails[type eq "work"].value eq "x"`` - a value filter followed by a sub-attribute and an
  operator - is not in the RFC grammar, but Entra sends it; it means ``emails[type eq "work" and
  value eq "x"]`` and is parsed to exactly that.
* A path without a URN that is not a core or common attribute is looked up in the extension
  schemas, in order: Entra sends bare ``manager eq "m"`` for the enterprise ``manager``.

Semantics chosen where the RFC is silent: an attribute path the resource type does not define is
treated as *unassigned* (``eq``/``co``/``pr``... match nothing, ``ne`` matches everything), like a
defined attribute without a value; only syntax errors and operator/type combinations the RFC
forbids (``gt``/``ge``/``lt``/``le`` on boolean or binary, an unparseable dateTime operand, a
value filter on a non-complex attribute) raise :class:`InvalidFilter`. ``ne`` is the negation of
``eq`` (so ``emails.type ne "work"`` means no email is of type work). ``eq null`` means "not
present" and ``ne null`` "present" (RFC 7643 §2.5: null and unassigned are equivalent).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, NoReturn, TypeAlias

from scim_core.errors import InvalidFilter, InvalidPath, ScimError
from scim_core.schema import Attribute, ResourceType

MAX_LENGTH = 4096
MAX_DEPTH = 50
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})

Value: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class AttrPath:
    """``[URI ":"] ATTRNAME [ "." subAttr ]``; ``urn`` is the schema URN as written, if any."""

    urn: str | None
    name: str
    sub: str | None = None

    def __str__(self) -> str:
        s = f"{self.name}.{self.sub}" if self.sub else self.name
        return f"{self.urn}:{s}" if self.urn else s


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str
    value: Value
    #: Source text of an unquoted literal, for comparing ``eq 0123`` against strings by text.
    raw: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: paths inside ``filter`` name sub-attributes of ``attr``."""

    path: AttrPath
    filter: Filter


Filter: TypeAlias = And | Or | Not | Compare | Present | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``attrPath / valuePath [subAttr]``."""

    attr: AttrPath
    value_filter: Filter | None = None
    sub: str | None = None


# --- tokenizer --------------------------------------------------------------------------------

_NAME = re.compile(r"\$ref|[A-Za-z][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# One match per token: whitespace, then punctuation, a JSON string or a bare word. A '"' that
# starts no complete string stops the scan, which is reported as an unterminated string.
_TOKEN = re.compile(
    r'[ \t\r\n]*(?:([()\[\]])|("[^"\\]*(?:\\.[^"\\]*)*")|([^ \t\r\n()\[\]"]+))', re.S
)
_KINDS = ("", "punct", "str", "word")
_JSON_STRING = json.JSONDecoder(strict=False)


class _Tok(NamedTuple):
    kind: str  # "(" ")" "[" "]" "str" "word" "eof"
    text: str
    pos: int
    end: int


def _tokenize(text: str, error: type[ScimError]) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    match, n = _TOKEN.match, len(text)
    while (m := match(text, pos)) and m.lastindex:
        kind, start, pos = _KINDS[m.lastindex], m.start(m.lastindex), m.end()
        tok = m.group(m.lastindex)
        toks.append(_Tok(tok if kind == "punct" else kind, tok, start, pos))
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    if pos != n:
        raise error(f"Unterminated string starting at position {pos}")
    toks.append(_Tok("eof", "", pos, pos))
    return toks


# --- parser -----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, error: type[ScimError]) -> None:
        if len(text) > MAX_LENGTH:
            raise error(f"Longer than {MAX_LENGTH} characters")
        self.error = error
        self.toks = _tokenize(text, error)
        self.i = 0
        self.depth = 0

    def fail(self, expected: str, tok: _Tok | None = None) -> NoReturn:
        tok = tok or self.toks[self.i]
        found = "end of input" if tok.kind == "eof" else repr(tok.text)
        raise self.error(f"Expected {expected} at position {tok.pos}, found {found}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.toks[self.i]
        if tok.kind == "word" and (low := tok.text.lower()) in words:
            self.i += 1
            return low
        return None

    def expect(self, kind: str, what: str) -> _Tok:
        if self.peek().kind != kind:
            self.fail(what)
        return self.next()

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"Filter nested deeper than {MAX_DEPTH} levels")

    def or_expr(self, in_vf: bool) -> Filter:
        node = self.and_expr(in_vf)
        while self.keyword("or"):
            node = Or(node, self.and_expr(in_vf))
        return node

    def and_expr(self, in_vf: bool) -> Filter:
        node = self.unary(in_vf)
        while self.keyword("and"):
            node = And(node, self.unary(in_vf))
        return node

    def unary(self, in_vf: bool) -> Filter:
        negate = self.keyword("not") is not None
        if negate and self.peek().kind != "(":
            self.fail("'(' after 'not' (RFC 7644 §3.4.2.2)")
        if self.peek().kind == "(":
            self.nest()
            self.i += 1
            inner = self.or_expr(in_vf)
            self.expect(")", "')'")
            self.depth -= 1
            return Not(inner) if negate else inner
        return self.attr_exp(in_vf)

    def attr_path(self, in_vf: bool) -> AttrPath:
        tok = self.peek()
        if tok.kind != "word":
            self.fail("an attribute path")
        self.i += 1
        urn, colon, rest = tok.text.rpartition(":")
        name, dot, sub = rest.partition(".")
        if not _NAME.fullmatch(name) or (dot and not _NAME.fullmatch(sub)) or (colon and not urn):
            self.fail("an attribute path", tok)
        if in_vf and (colon or dot):
            raise self.error(
                f"Only a sub-attribute name may appear inside '[...]', "
                f"found {tok.text!r} at position {tok.pos}"
            )
        return AttrPath(urn if colon else None, name, sub if dot else None)

    def attr_exp(self, in_vf: bool) -> Filter:
        path = self.attr_path(in_vf)
        if self.peek().kind != "[":
            return self.operation(path)
        if in_vf:
            raise self.error(f"Value filters cannot be nested (position {self.peek().pos})")
        if path.sub:
            raise self.error(f"A value filter cannot follow the sub-attribute {path}")
        inner = self.value_filter()
        if sub := self.sub_after_filter():
            # Entra: emails[type eq "work"].value eq "x" (not in RFC 7644's grammar).
            inner = And(inner, self.operation(AttrPath(None, sub)))
        return ValuePath(path, inner)

    def value_filter(self) -> Filter:
        self.nest()
        self.i += 1
        inner = self.or_expr(in_vf=True)
        self.expect("]", "']'")
        self.depth -= 1
        return inner

    def sub_after_filter(self) -> str | None:
        """``.sub`` written straight after ``]`` (RFC 7644 §3.5.2 ``valuePath [subAttr]``)."""
        tok = self.peek()
        if tok.kind != "word" or tok.pos != self.toks[self.i - 1].end or tok.text[:1] != ".":
            return None
        if not _NAME.fullmatch(tok.text[1:]):
            self.fail("a sub-attribute name", tok)
        self.i += 1
        return tok.text[1:]

    def operation(self, path: AttrPath) -> Filter:
        op = self.keyword("pr", *COMPARE_OPS)
        if op is None:
            self.fail("an operator (eq ne co sw ew pr gt ge lt le)")
        if op == "pr":
            return Present(path)
        tok = self.next()
        if tok.kind == "str":
            if "\\" not in tok.text:
                return Compare(path, op, tok.text[1:-1])
            try:
                return Compare(path, op, _JSON_STRING.decode(tok.text))
            except ValueError:
                raise self.error(f"Invalid string literal at position {tok.pos}") from None
        if tok.kind != "word":
            self.fail("a comparison value", tok)
        return Compare(path, op, _literal(tok.text), raw=tok.text)


def _literal(text: str) -> Value:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _NUMBER.fullmatch(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return text  # an unquoted string (Entra leniency, see the module docstring)


def parse_filter(text: str) -> Filter:
    """Parse a ``filter`` parameter; raises :class:`InvalidFilter` with the offending position."""
    p = _Parser(text, InvalidFilter)
    if p.peek().kind == "eof":
        raise InvalidFilter("Empty filter")
    node = p.or_expr(in_vf=False)
    if p.peek().kind != "eof":
        p.fail("'and', 'or' or end of input")
    return node


def parse_path(text: str) -> PatchPath:
    """Parse a PATCH operation ``path``; raises :class:`InvalidPath`."""
    p = _Parser(text, InvalidPath)
    attr = p.attr_path(in_vf=False)
    value_filter: Filter | None = None
    sub: str | None = None
    if p.peek().kind == "[":
        if attr.sub:
            raise InvalidPath(f"A value filter cannot follow the sub-attribute {attr}")
        value_filter = p.value_filter()
        sub = p.sub_after_filter()
    if p.peek().kind != "eof":
        p.fail("end of path")
    return PatchPath(attr, value_filter, sub)


def referenced_paths(f: Filter) -> Iterator[AttrPath]:
    """Every attribute path ``f`` reads, made absolute (``emails[type eq x]`` -> emails.type)."""
    stack: list[tuple[Filter, AttrPath | None]] = [(f, None)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, (And, Or)):
            stack += [(node.right, parent), (node.left, parent)]
        elif isinstance(node, Not):
            stack.append((node.inner, parent))
        elif isinstance(node, ValuePath):
            stack.append((node.filter, node.path))
        elif parent is None:
            yield node.path
        else:
            yield AttrPath(parent.urn, parent.name, node.path.name)


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
    if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
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
    if op in _ORDER_OPS and kind in ("boolean", "binary"):
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

    def __init__(self, rtype: ResourceType, parent: Attribute | None = None) -> None:
        self.rtype, self.parent = rtype, parent

    def resolve(self, path: AttrPath, compare: bool) -> tuple[_Getter, Attribute | None]:
        if self.parent is not None:
            sub = self.parent.sub(path.name)
            if sub is None:
                return (lambda d: []), None
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
            return (lambda d: []), None  # undefined: behaves as unassigned (module docstring)
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
            inner = _Scope(self.rtype, attr).compile(f.filter)
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


def compile_filter(f: Filter, rtype: ResourceType) -> Matcher:
    """A predicate over resource documents of ``rtype``; raises :class:`InvalidFilter` for
    operator/type combinations the RFC forbids. Compile once, apply to many resources."""
    return _Scope(rtype).compile(f)


def compile_value_filter(f: Filter, attr: Attribute, rtype: ResourceType) -> Matcher:
    """A predicate over one value of complex ``attr``: the ``[...]`` of a PATCH path (§3.5.2)."""
    if not attr.is_complex:
        raise InvalidFilter(f"'{attr.name}[...]' needs a complex attribute")
    return _Scope(rtype, attr).compile(f)


# Keyed by identity, not equality: Compare(p, "eq", 1) == Compare(p, "eq", True) in Python.
_CACHE: dict[tuple[int, int], tuple[Filter, ResourceType, Matcher]] = {}


def matches(f: Filter, resource: Mapping[str, Any], rtype: ResourceType) -> bool:
    """Whether ``resource`` matches ``f``. The compiled form of the last filters seen is cached,
    so looping over resources with one parsed filter compiles it once."""
    hit = _CACHE.get((id(f), id(rtype)))
    if hit is None or hit[0] is not f or hit[1] is not rtype:
        if len(_CACHE) >= 64:
            _CACHE.clear()
        hit = _CACHE[id(f), id(rtype)] = (f, rtype, compile_filter(f, rtype))
    return hit[2](resource)
