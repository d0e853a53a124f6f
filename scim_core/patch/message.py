"""The PatchOp message (RFC 7644 §3.5.2): its operations as ``(op, path, value)``."""

from __future__ import annotations

from typing import Any

from scim_core.errors import InvalidPath, InvalidSyntax

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_OPS = frozenset({"add", "replace", "remove"})


def operations(body: Any) -> list[tuple[str, str | None, Any]]:
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
