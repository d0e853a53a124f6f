"""The JSON the service accepts: I-JSON (RFC 7493), decided once for every body-carrying route.

Whatever the service accepts it must be able to store, read, render, list, filter and delete, so
a body is refused at this boundary (400, nothing written) when it holds what cannot make that
round trip or is ambiguous:

- a lone UTF-16 surrogate (``"\\ud800"``): JSON's escape syntax allows it (RFC 8259 §8.2), but no
  UTF-8 text can carry it (RFC 3629 §3), so it could be stored but never rendered (I-JSON §2.1:
  MUST NOT) -> ``invalidValue``;
- a duplicate member name in one object (``{"count": 1, "count": 2}``): RFC 8259 §4 leaves the
  outcome to the parser; I-JSON §2.3 forbids it. Python keeps the last one silently, another
  client's parser the first: refusing it is the only reading that cannot differ ->
  ``invalidSyntax``;
- a number that is not a finite IEEE 754 double or an integer beyond 64 bits (``1e999999``,
  5,000 digits): I-JSON §2.2; Table Storage's own numbers are 64-bit -> ``invalidValue``;
- ``NaN``/``Infinity`` literals, which are not JSON at all (Python accepts them) ->
  ``invalidSyntax``.

Member names are compared exactly (``userName`` and ``username`` are different JSON names, though
the same SCIM attribute: :mod:`scim_core.resource` merges those).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from scim_core.errors import InvalidSyntax, InvalidValue

#: Integers must fit a signed 64-bit integer (Table Storage's Edm.Int64; I-JSON §2.2).
INT_RANGE = (-(2**63), 2**63 - 1)
#: Longest digit string parsed as a number at all (int() refuses more than 4,300 digits).
_MAX_DIGITS = 400
_SURROGATE = re.compile("[\ud800-\udfff]")
# A lone surrogate can only arrive as a \uD8xx-\uDFxx escape: UTF-8 cannot encode one, and the
# decoder rejects such bytes. Bodies without that escape skip the walk over every string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Refused(ValueError):
    """Raised inside the decoder's hooks; carries the SCIM error to answer."""

    def __init__(self, error: InvalidSyntax | InvalidValue) -> None:
        super().__init__(error.detail)
        self.error = error


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        names = [k for k, _ in pairs]
        name = next(k for n, k in enumerate(names) if k in names[:n])
        raise _Refused(
            InvalidSyntax(
                f"the member name {_shown(name)} appears twice in one object "
                "(RFC 7493 §2.3: names must be unique)"
            )
        )
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _Refused(InvalidValue(f"a number of {len(text)} digits is out of range"))
    value = int(text)
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise _Refused(InvalidValue(f"the integer {text[:30]} is out of the 64-bit range"))
    return value


def _float(text: str) -> float:
    if len(text) > _MAX_DIGITS:
        raise _Refused(InvalidValue(f"a number of {len(text)} characters is out of range"))
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(
            InvalidValue(f"the number {text[:30]} is out of range (RFC 7493 §2.2: finite doubles)")
        )
    return value


def _constant(name: str) -> Any:
    raise _Refused(InvalidSyntax(f"{name} is not a JSON value (RFC 8259 §6)"))


def decode(data: bytes) -> Any:
    """``data`` (UTF-8 JSON) as Python values, or the SCIM 400 that says why not."""
    try:
        value = json.loads(
            data,
            object_pairs_hook=_object,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _Refused as refused:
        raise refused.error from None
    except RecursionError:
        raise InvalidSyntax("the request body nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidSyntax(f"the request body is not valid JSON: {_shown(str(exc))}") from None
    if _SURROGATE_ESCAPE.search(data):
        check_text(value)
    return value


def check_text(value: Any, where: str = "the request body") -> None:
    """Raises ``invalidValue`` if any string (or member name) in ``value`` holds a lone
    surrogate. Iterative: a deeply nested value must not exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidValue(
                    f"{where} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which no "
                    "UTF-8 text can carry (RFC 7493 §2.1)"
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _shown(text: str) -> str:
    """``text`` safe to put in an error body: bounded, surrogates escaped."""
    short = text if len(text) <= 80 else text[:80] + "..."
    return json.dumps(short)
