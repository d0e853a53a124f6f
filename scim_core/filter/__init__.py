"""SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2): the AST (:mod:`.nodes`), parsing
(:mod:`.parser`) and evaluation (:mod:`.matcher`).

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

Semantics: an attribute path the resource type does not define is ``invalidFilter`` (RFC 7644
§3.4.2.2), except in a root search (§3.4.3) for the types that lack an attribute another type
defines, where it is *unassigned* (``eq``/``co``/``pr``... match nothing, ``ne`` matches
everything), like a defined attribute without a value. Syntax errors and operator/type
combinations the RFC forbids (``gt``/``ge``/``lt``/``le`` on boolean or binary, an unparseable
dateTime operand, a value filter on a non-complex attribute) raise :class:`InvalidFilter`.
``ne`` is the negation of ``eq`` (so ``emails.type ne "work"`` means no email is of type work).
``eq null`` means "not present" and ``ne null`` "present" (RFC 7643 §2.5: null and unassigned
are equivalent).
"""

from scim_core.filter.matcher import (
    Matcher,
    compile_filter,
    compile_value_filter,
    compiled,
    matches,
)
from scim_core.filter.nodes import (
    COMPARE_OPS,
    MAX_DEPTH,
    MAX_LENGTH,
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
from scim_core.filter.parser import parse_filter, parse_path, referenced_paths

__all__ = [
    "COMPARE_OPS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "AttrPath",
    "Compare",
    "Filter",
    "Matcher",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "Value",
    "ValuePath",
    "compile_filter",
    "compile_value_filter",
    "compiled",
    "matches",
    "parse_filter",
    "parse_path",
    "referenced_paths",
]
