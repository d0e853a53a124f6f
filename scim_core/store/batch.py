"""Entity-group transactions (EGTs) for scim_core.store.table, framed directly.

``client.submit_transaction(ops)`` goes through azure-core's generic multipart code, which writes
and parses the batch with the ``email`` package and starts two thread pools per call: that was
~5 ms of the ~6.6 ms of CPU a user create took (bench/README.md, "Fixes"). Here the parts are
still built by the SDK (TableBatchOperations), the batch still goes through the client's pipeline
(signing, retries, the request counter), and part responses are decoded and errors raised by the
SDK's own functions, as in ``TableClient._batch_send``; only the multipart framing (RFC 2046, as
the Table service documents it for EGTs) is done here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from email.utils import formatdate
from http.client import HTTPResponse as _HTTPResponse
from typing import Any, cast

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse

# The underscored modules below are private parts of the pinned SDK (azure-core 1.41.0,
# azure-data-tables 12.7.0) that transact reuses, so that an EGT's parts, results and errors
# stay exactly the SDK's; re-check this module when upgrading either package.
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse
from azure.core.utils._pipeline_transport_rest_shared import BytesIOSocket
from azure.data.tables import RequestTooLargeError, TableClient, TableTransactionError
from azure.data.tables._base_client import extract_batch_part_metadata
from azure.data.tables._error import _decode_error, _validate_tablename_error
from azure.data.tables._table_batch import TableBatchOperations

Op = tuple[str, dict[str, Any], dict[str, Any]]  # (verb, entity, options) for submit_transaction
Results = list[Mapping[str, Any]]

# The SDK's private helpers are untyped; these are their types as transact uses them.
_sdk_decode_error = cast(Callable[..., HttpResponseError], _decode_error)
_sdk_check_table_name = cast(Callable[[HttpResponseError, str], None], _validate_tablename_error)
_sdk_part_metadata = cast(Callable[[HttpResponse], Mapping[str, Any]], extract_batch_part_metadata)
_sdk_socket = cast(Callable[[bytes], Any], BytesIOSocket)
_sdk_part_response = cast(Callable[..., HttpResponse], RestHttpClientTransportResponse)


def transact(client: TableClient, ops: Sequence[Op]) -> Results:
    """``client.submit_transaction(ops)``, framed here (see the module docstring)."""
    batch = TableBatchOperations(
        config=client._client._config,
        endpoint=f"{client.scheme}://{client._primary_hostname}",
        table_name=client.table_name,
        is_cosmos_endpoint=client._cosmos_endpoint,
    )
    for op in ops:
        batch.add_operation(op)
    changeset, outer = f"changeset_{uuid.uuid4()}", f"batch_{uuid.uuid4()}"
    body = b"".join(
        b"--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: %d\r\n\r\n%s\r\n" % (changeset.encode(), n, _part_bytes(part))
        for n, part in enumerate(batch.requests)
    )
    head = b"--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n"
    body = head % (outer.encode(), changeset.encode()) + body
    body += b"--%s--\r\n--%s--\r\n" % (changeset.encode(), outer.encode())
    request = HttpRequest(
        "POST",
        f"{client.scheme}://{client._primary_hostname}/$batch",
        headers={
            "x-ms-version": client.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={outer}",
            "Accept": "application/json",
        },
        content=body,
    )
    response = client._client.send_request(request, stream=True)
    if response.status_code == 413:
        raise _sdk_decode_error(
            response,
            error_message="The transaction request was too large",
            error_type=RequestTooLargeError,
        )
    if response.status_code != 202:
        decoded = _sdk_decode_error(response)
        _sdk_check_table_name(decoded, client.table_name)
        raise decoded
    parts = _response_parts(response, batch.requests)
    failed = [p for p in parts if not 200 <= p.status_code < 300]
    if failed:
        if failed[0].status_code == 413:
            raise _sdk_decode_error(
                response,
                error_message="The transaction request was too large",
                error_type=RequestTooLargeError,
            )
        decoded = _sdk_decode_error(response=failed[0], error_type=TableTransactionError)
        _sdk_check_table_name(decoded, client.table_name)
        raise decoded
    return [_sdk_part_metadata(p) for p in parts]


def _part_bytes(request: HttpRequest) -> bytes:
    """One operation as an ``application/http`` part: request line, headers, body. The SDK's
    per-part policy (StorageHeadersPolicy) adds the date headers; so does this."""
    date = formatdate(usegmt=True)
    headers = {**request.headers, "x-ms-date": date, "Date": date}
    lines = [f"{request.method} {request.url} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    content = request.content
    data = content.encode("utf-8") if isinstance(content, str) else (content or b"")
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + data


def _response_parts(response: HttpResponse, requests: list[HttpRequest]) -> list[HttpResponse]:
    """The ``application/http`` parts of a batch response (one changeset inside the batch), as
    SDK response objects, in order."""
    raw = response.read()
    parts: list[HttpResponse] = []
    for part in _split_multipart(raw, response.headers.get("Content-Type", "")):
        head, _, payload = part.partition(b"\r\n\r\n")
        kind = _header(head, "content-type")
        if kind.startswith("multipart/mixed"):
            for sub in _split_multipart(payload, kind):
                _, _, http = sub.partition(b"\r\n\r\n")
                request = requests[len(parts)] if len(parts) < len(requests) else response.request
                internal = _HTTPResponse(_sdk_socket(http), method=request.method)
                internal.begin()
                parts.append(_sdk_part_response(request=request, internal_response=internal))
    return parts


def _split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The parts of a multipart body (RFC 2046 §5.1.1), each with its headers."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    sections = body.split(b"--" + boundary)
    # sections[0] is the preamble; the last one starts with "--" (the close delimiter).
    return [
        s.removeprefix(b"\r\n").removesuffix(b"\r\n")
        for s in sections[1:]
        if not s.startswith(b"--")
    ]


def _header(head: bytes, name: str) -> str:
    for line in head.decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""
