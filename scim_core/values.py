"""Attribute values: checking and coercing a client's JSON value against its definition.

One function per granularity:

- :func:`coerce_value` — one value of an attribute's type (for a multi-valued attribute: one
  element). Used by resource validation (POST/PUT) and by PATCH.
- :func:`coerce_values` — the whole value of an attribute: a list for a multi-valued one.

Types follow RFC 7643 §2.3. Leniency, each for a client we serve:

- boolean: the strings ``"true"``/``"false"`` in any case are booleans — Microsoft Entra's
  legacy PATCH dialect sends ``"False"`` (ENTRA.md "PATCH: two dialects"; Microsoft Learn,
  "Known issues and resolutions with SCIM 2.0 protocol compliance").
- string/reference/binary: a JSON number is taken as its decimal text (a mapped numeric
  source in Entra); booleans, objects and arrays are refused.
- integer/decimal: numeric strings are parsed.
- complex: unknown and read-only sub-attributes and null sub-values are dropped (ENTRA.md
  "Create": ignore unknown attributes of known schemas leniently; read-only ones are the
  server's to set). Keys come back spelt as the schema spells them.
- a single-valued complex attribute with a ``value`` sub-attribute accepts a plain scalar as
  ``{"value": scalar}``, and ``""`` as "no value" — Entra sends the enterprise ``manager`` as a
  plain id and clears it with ``""`` (ENTRA.md "Manager").

Anything else that does not fit is :class:`~scim_core.errors.InvalidValue` naming the attribute.

Plus the small value algebra writes need: :func:`is_assigned` (RFC 7643 §2.5),
:func:`merge_complex` (RFC 7644 §3.5.2.3) and :func:`settle_primary` (RFC 7643 §2.4).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from scim_core.errors import InvalidValue
from scim_core.schema import Attribute

_BOOLEANS = {"true": True, "false": False}


def coerce_value(attr: Attribute, value: Any) -> Any:
    """One value of ``attr``'s type (an element, for a multi-valued attribute).

    ``None`` stays ``None`` (unassigned). A complex value whose sub-attributes are all dropped
    comes back as ``{}``, which callers treat as unassigned too.
    """
    if value is None:
        return None
    kind = attr.type
    if kind == "complex":
        return _complex(attr, value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
            return _BOOLEANS[value.strip().lower()]
        raise _mismatch(attr, value, "a boolean")
    if kind in ("string", "reference", "binary"):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _mismatch(attr, value, "a string")
    if kind == "integer":
        return _integer(attr, value)
    if kind == "decimal":
        return _decimal(attr, value)
    if kind == "dateTime":
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        raise _mismatch(attr, value, "an ISO 8601 dateTime string (RFC 7643 §2.3.5)")
    raise InvalidValue(f"attribute '{attr.name}' has unsupported type {kind!r}")


def coerce_values(attr: Attribute, value: Any) -> Any:
    """The whole value of ``attr``: a list of coerced elements for a multi-valued attribute
    (a single element is taken as a one-element list; null and empty elements are dropped),
    otherwise one coerced value (a one-element list is unwrapped: older Entra docs send the
    manager as ``[{"value": id}]``)."""
    if attr.multi_valued:
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            coerced = coerce_value(attr, item)
            if coerced is not None and coerced != {}:
                out.append(coerced)
        return out
    if isinstance(value, list):
        if len(value) > 1:
            raise InvalidValue(f"'{attr.name}' is single-valued, got a list of {len(value)}")
        value = value[0] if value else None
    return coerce_value(attr, value)


def is_assigned(v: Any) -> bool:
    """RFC 7643 §2.5: null, an empty list and an empty complex value are unassigned."""
    return v is not None and v != [] and v != {}


def merge_complex(attr: Attribute, obj: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """Write a complex value's sub-attributes into ``obj`` (in place; returned): the ones it
    names are set, a null unassigns one, the others are kept (RFC 7644 §3.5.2.3)."""
    coerced = coerce_values(attr, value) or {}
    if attr.multi_valued:
        coerced = coerced[0] if coerced else {}
    for key, item in value.items():
        sub = attr.sub(key)
        if sub is None or sub.mutability == "readOnly":
            continue
        new = coerced.get(sub.name) if item is not None else None
        if is_assigned(new):
            obj[sub.name] = new
        else:
            obj.pop(sub.name, None)
    return obj


def is_primary(el: Any) -> bool:
    return isinstance(el, dict) and el.get("primary") is True


def settle_primary(items: list[Any], marked: set[int]) -> list[Any]:
    """RFC 7644 §3.5.2: the value at index ``marked`` (newly marked primary) sets "primary"
    to false on the others; more than one newly marked is invalid (RFC 7643 §2.4)."""
    if len(marked) > 1:
        raise InvalidValue("more than one value marked primary (RFC 7643 §2.4)")
    if not marked:
        return items
    (keep,) = marked
    return [
        {**el, "primary": False} if i != keep and is_primary(el) else el
        for i, el in enumerate(items)
    ]


def _complex(attr: Attribute, value: Any) -> Any:
    if not isinstance(value, dict):
        if attr.multi_valued or attr.sub("value") is None or isinstance(value, (list, bool)):
            raise _mismatch(attr, value, "an object")
        # Entra's manager shorthand (ENTRA.md "Manager"): a plain id, "" for "no manager".
        if value == "":
            return None
        value = {"value": value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None or sub.mutability == "readOnly" or item is None:
            continue
        coerced = coerce_values(sub, item)
        if coerced is not None and coerced != []:
            out[sub.name] = coerced
    return out


def _integer(attr: Attribute, value: Any) -> int:
    if isinstance(value, bool):
        raise _mismatch(attr, value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _mismatch(attr, value, "an integer")


def _decimal(attr: Attribute, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _mismatch(attr, value, "a decimal number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            if Decimal(value.strip()).is_finite():
                return float(value)
        except (InvalidOperation, ValueError):
            pass
    raise _mismatch(attr, value, "a decimal number")


def _mismatch(attr: Attribute, value: Any, expected: str) -> InvalidValue:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return InvalidValue(f"'{attr.name}' must be {expected}, got {type(value).__name__} {shown}")
