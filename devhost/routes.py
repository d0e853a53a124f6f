"""Route templates of HTTP triggers, matched the way the Azure Functions host matches them.

The host routes with ASP.NET Core: literal segments compare case-insensitively, ``{id}`` binds one
segment, ``{id?}`` is optional (trailing only), ``{*rest}`` catches everything after it, and
``{id:int}`` adds a constraint. When several templates match a path, the most specific one wins
(literal before constrained parameter before parameter before catch-all), whatever the order in
which the functions were declared. Complex segments (``{a}.{b}``), defaults (``{id=1}``) and
constraints other than the common ones below are rejected when the app loads, so a route the
local host cannot serve faithfully fails loudly instead of being served differently.

https://learn.microsoft.com/aspnet/core/fundamentals/routing#route-templates
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

#: Precedence of a segment kind: lower is more specific (ASP.NET's RoutePrecedence, simplified).
_LITERAL, _CONSTRAINED, _PARAMETER, _CATCH_ALL = 1, 3, 4, 5

_PARAM = re.compile(
    r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_]\w*)(?::(?P<kind>\w+))?(?P<opt>\?)?\}$"
)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": lambda v: re.fullmatch(r"-?\d+", v) is not None,
    "long": lambda v: re.fullmatch(r"-?\d+", v) is not None,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "bool": lambda v: v.lower() in ("true", "false"),
    "guid": _is_guid,
}


class RouteTemplateError(ValueError):
    """A route template uses syntax the local host does not support."""


@dataclass(frozen=True)
class Segment:
    literal: str | None = None
    name: str | None = None
    constraint: str | None = None
    optional: bool = False
    catch_all: bool = False

    @property
    def precedence(self) -> int:
        if self.literal is not None:
            return _LITERAL
        if self.catch_all:
            return _CATCH_ALL
        return _CONSTRAINED if self.constraint else _PARAMETER

    def accepts(self, value: str) -> bool:
        if self.literal is not None:
            return value.casefold() == self.literal.casefold()
        return self.constraint is None or CONSTRAINTS[self.constraint](value)


def _parse_segment(text: str, template: str) -> Segment:
    if "{" not in text and "}" not in text:
        return Segment(literal=text)
    found = _PARAM.match(text)
    if found is None:
        raise RouteTemplateError(f"unsupported route segment {text!r} in {template!r}")
    kind = found["kind"]
    if kind is not None and kind not in CONSTRAINTS:
        raise RouteTemplateError(f"unsupported route constraint {kind!r} in {template!r}")
    return Segment(
        name=found["name"],
        constraint=kind,
        optional=found["opt"] is not None,
        catch_all=found["star"] is not None,
    )


class RouteTemplate:
    """One parsed route template such as ``scim/v2/Users/{id}``."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        parts = self.template.split("/") if self.template else []
        self.segments = tuple(_parse_segment(part, template) for part in parts)
        for index, segment in enumerate(self.segments):
            last = index == len(self.segments) - 1
            if segment.catch_all and not last:
                raise RouteTemplateError(f"a catch-all must be the last segment: {template!r}")
            if segment.optional and not all(s.optional for s in self.segments[index:]):
                raise RouteTemplateError(f"only trailing segments can be optional: {template!r}")

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(segment.precedence for segment in self.segments)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values when the raw URL ``path`` matches, else ``None``.

        Segments are percent-decoded one by one, so an encoded ``%2F`` stays inside its segment
        (as in ASP.NET Core) and ids such as ``a%23EXT%23`` arrive decoded.
        """
        raw = path.strip("/").split("/") if path.strip("/") else []
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.catch_all:
                # A catch-all also matches nothing; then it has no value, as in ASP.NET Core.
                rest = "/".join(unquote(part) for part in raw[index:])
                if rest and segment.name is not None:
                    values[segment.name] = rest
                return values
            if index >= len(raw):
                return values if segment.optional else None
            value = unquote(raw[index])
            if not value or not segment.accepts(value):
                return None
            if segment.name is not None:
                values[segment.name] = value
        return values if len(raw) == len(self.segments) else None

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"


def with_prefix(prefix: str, route: str) -> str:
    """The full template the host serves: host.json ``routePrefix`` + the function's route."""
    parts: Sequence[str] = [part.strip("/") for part in (prefix, route) if part.strip("/")]
    return "/".join(parts)
