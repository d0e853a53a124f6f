"""The AST of SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias

MAX_LENGTH = 4096
MAX_DEPTH = 50
COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})
#: A JSON number (RFC 8259 §6): a bare literal of this form is a number, not a string.
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

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
