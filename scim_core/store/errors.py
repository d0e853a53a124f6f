"""Azure Table errors -> SCIM errors, for scim_core.store.table: the one place that happens."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.data.tables import TableTransactionError

from scim_core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ScimError,
    ServiceUnavailable,
)
from scim_core.store.batch import Op

DEFAULT_RETRY_AFTER = 5


class RowMissing(NotFound):
    """An operation of a transaction found its row missing; ``index`` is that operation's place
    in the transaction when the service says (None otherwise)."""

    def __init__(self, detail: str, index: int | None = None) -> None:
        super().__init__(detail)
        self.index = index


class TableMissing(NotFound):
    """A table of the store does not exist (yet): reads find nothing, writes create it."""


@contextmanager
def translated(what: str, ops: Sequence[Op] = (), conflict: str | None = None) -> Iterator[None]:
    """Azure errors -> SCIM errors; the one place that happens. Errors that mean a bug or a
    misconfiguration (400, 403, ...) propagate untranslated: the HTTP edge logs them as a 500."""
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise ServiceUnavailable("storage is unreachable", retry_after=DEFAULT_RETRY_AFTER) from exc
    except HttpResponseError as exc:
        error = translate(exc, what, ops, conflict)
        if error is None:
            raise
        raise error from exc


def translate(
    exc: HttpResponseError, what: str, ops: Sequence[Op], conflict: str | None
) -> ScimError | None:
    status, code = exc.status_code, error_code(exc)
    if status in (429, 503) or code in ("ServerBusy", "OperationTimedOut"):
        return ServiceUnavailable("storage is busy", retry_after=retry_after(exc))
    if status == 404:
        if code == "TableNotFound":
            return TableMissing(f"{what} not found (no table)")
        index = exc.index if isinstance(exc, TableTransactionError) else None
        return RowMissing(f"{what} not found", index)
    if (
        status == 409
        and conflict
        and isinstance(exc, TableTransactionError)
        and exc.index < len(ops)
    ):
        # The failed operation's RowKey names the key that is taken: "id|..." or "userName|...".
        return Conflict(
            f"a {conflict} with this {ops[exc.index][1]['RowKey'].split('|')[0]} already exists"
        )
    if status == 409 or code == "InvalidDuplicateRow":  # the latter: one key twice in a bulk EGT
        return Conflict(f"{what} already exists")
    if status == 412:
        return PreconditionFailed(f"{what} was modified since it was read")
    if status == 413 or code in _TOO_LARGE:
        return PayloadTooLarge(f"{what} is too large for storage ({code or status})")
    return None


#: Storage 400s that mean "a value or entity over a Table limit": the client's data, not a bug.
_TOO_LARGE = frozenset(
    {
        "PropertyValueTooLarge",
        "EntityTooLarge",
        "RequestBodyTooLarge",
        "TooManyProperties",
        "KeyValueTooLarge",
    }
)


def error_code(exc: HttpResponseError) -> str:
    """The service's error code: set by most SDK calls, only in the body for some (an entity
    insert into a missing table answers ``{"odata.error": {"code": "TableNotFound", ...}}``)."""
    code = getattr(exc, "error_code", None)
    if code:
        # A TableErrorCode member (a str Enum, whose str() is "TableErrorCode.X") or a string.
        return str(getattr(code, "value", code))
    try:
        body: Any = json.loads(exc.response.text()) if exc.response is not None else {}
        return str(body["odata.error"]["code"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""


def retry_after(exc: HttpResponseError) -> int:
    header = getattr(exc.response, "headers", {}).get("Retry-After")
    try:
        return max(1, int(header)) if header else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
