"""Parsing of filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2): one hand-written tokenizer
and recursive-descent parser for both. The interop bends it accepts are listed in
:mod:`scim_core.filter`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import NamedTuple, NoReturn

from scim_core.errors import InvalidFilter, InvalidPath, ScimError
from scim_core.filter.nodes import (
    COMPARE_OPS,
    MAX_DEPTH,
    MAX_LENGTH,
    NUMBER,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)

# --- tokenizer --------------------------------------------------------------------------------

_NAME = re.compile(r"\$ref|[A-Za-z][A-Za-z0-9_-]*")
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
    if NUMBER.fullmatch(text):
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
