"""Storage errors -> SCIM errors (scim_core.store.errors.translate), whichever form the SDK
gives the service's error code in: a TableErrorCode member, a plain string, or only the body."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableErrorCode

from scim_core.errors import NotFound, PayloadTooLarge, ServiceUnavailable
from scim_core.store.errors import TableMissing, error_code, translate


class _Response:
    def __init__(self, status: int, body: str) -> None:
        self.status_code = status
        self.reason = "x"
        self.headers: dict[str, str] = {}
        self._body = body

    def text(self, encoding: Any = None) -> str:
        return self._body


def _error(status: int, code: Any = None, body: str = "") -> HttpResponseError:
    exc = HttpResponseError(message="storage said no", response=_Response(status, body))
    exc.status_code = status
    if code is not None:
        exc.error_code = code
    return exc


@pytest.mark.parametrize(
    "code",
    [TableErrorCode.ENTITY_TOO_LARGE, "EntityTooLarge"],
    ids=["enum", "string"],
)
def test_code_as_enum_or_string(code: Any) -> None:
    assert error_code(_error(400, code)) == "EntityTooLarge"
    assert isinstance(translate(_error(400, code), "User u", (), None), PayloadTooLarge)


def test_code_only_in_the_body() -> None:
    body = '{"odata.error":{"code":"TableNotFound","message":{"value":"no table"}}}'
    exc = _error(404, body=body)
    assert error_code(exc) == "TableNotFound"
    assert isinstance(translate(exc, "User u", (), None), TableMissing)


def test_server_busy_enum_is_retryable() -> None:
    error = translate(_error(500, TableErrorCode.SERVER_BUSY), "User u", (), None)
    assert isinstance(error, ServiceUnavailable)


def test_plain_404_is_not_found_not_a_missing_table() -> None:
    error = translate(_error(404, TableErrorCode.RESOURCE_NOT_FOUND), "User u", (), None)
    assert isinstance(error, NotFound) and not isinstance(error, TableMissing)


def test_unreadable_body_gives_no_code() -> None:
    assert error_code(_error(500, body="<html>gateway</html>")) == ""
