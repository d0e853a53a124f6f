"""HTTP/1.1 request framing, read strictly: the request line, the header section and the body.

Everything a client can get wrong in these raises ``FramingError`` with the status RFC 9112 and
RFC 9110 give it, so the server answers it with a SCIM error body instead of the standard
library's HTML page, a traceback in the log, or silence:

- request line over 64 KiB: 414; not ``method SP target SP HTTP/1.x``: 400 (HTTP/0.9's
  ``GET /path`` included); HTTP/2 or later on this port: 505;
- header section over 64 KiB or over 100 fields: 431; a line without a colon, whitespace before
  the colon, obsolete line folding, control characters in a value, a missing, repeated or
  malformed ``Host``: 400 (RFC 9112 sections 3.2 and 5);
- ``Content-Length`` that is not one non-negative integer, both ``Content-Length`` and
  ``Transfer-Encoding``, a malformed chunk, a body shorter than announced: 400; a transfer coding
  other than chunked: 501 (RFC 9112 section 6.1); a body over 100 MB: 413;
- a client that stops sending inside a request: 408 once the socket's read timeout runs out.

The limits are those of the Functions host's web server or looser. Kestrel's defaults are 8 KB for
the request line, 32 KB and 100 fields for the headers ("KestrelServerLimits Class",
https://learn.microsoft.com/dotnet/api/microsoft.aspnetcore.server.kestrel.core.kestrelserverlimits);
devhost allows 64 KiB for both (the standard library's line limit), so the app's own bounds on
long query strings (``attributes=``, ``filter=``) stay reachable, and testable, through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

MAX_REQUEST_LINE = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100
#: The Functions host rejects request bodies over 100 MB (``maxRequestBodySize``).
MAX_BODY_BYTES = 100 * 1024 * 1024
#: Empty lines tolerated before a request line (RFC 9112 2.2: a server SHOULD ignore at least one).
_MAX_LEADING_EMPTY_LINES = 4
_MAX_CHUNK_LINE = 4096

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")  # RFC 9112 2.3
_TARGET = re.compile(rb"[\x21-\x7e]+")  # visible ASCII: no controls, spaces or raw non-ASCII
_ABSOLUTE = re.compile(r"(?i)https?://([^/?#]*)")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: HTAB is the only one allowed
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")  # 15 hex digits already exceed any body limit


class Reader(Protocol):
    """The part of a buffered socket file (``rfile``) framing uses."""

    def readline(self, size: int, /) -> bytes: ...

    def read(self, size: int, /) -> bytes: ...


class FramingError(Exception):
    """The request cannot be read as HTTP/1.1; ``status`` and ``detail`` are the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RequestHead:
    """A request line and header section that passed every check above."""

    method: str
    target: str
    version: tuple[int, int]
    fields: tuple[tuple[str, str], ...]  # (name as sent, value without surrounding whitespace)

    @property
    def version_text(self) -> str:
        return f"HTTP/{self.version[0]}.{self.version[1]}"

    def values(self, name: str) -> list[str]:
        """Every value of the field ``name`` (case-insensitive), in the order received."""
        return [value for field, value in self.fields if field.lower() == name]

    @property
    def keep_alive(self) -> bool:
        """RFC 9112 9.3: HTTP/1.1 persists unless ``close``; HTTP/1.0 only with ``keep-alive``."""
        options = {o.strip().lower() for v in self.values("connection") for o in v.split(",")}
        if self.version >= (1, 1):
            return "close" not in options
        return "keep-alive" in options

    @property
    def authority(self) -> str:
        """The target's authority (absolute form) or else the ``Host`` field (RFC 9112 3.2.2)."""
        absolute = _ABSOLUTE.match(self.target)
        if absolute is not None:
            return absolute[1]
        hosts = self.values("host")
        return hosts[0] if hosts else ""


def read_head(rfile: Reader) -> RequestHead | None:
    """The next request's line and headers; ``None`` when the client closed (or idled out) first.

    The socket's timeout applies to each read: running out of it while waiting for a request
    ends the connection quietly, as a keep-alive timeout does; inside the headers it is a 408.
    """
    line = _request_line(rfile)
    if line is None:
        return None
    method, target, version = _parse_request_line(line)
    try:
        fields = _read_fields(rfile)
    except TimeoutError:
        raise FramingError(408, "the request headers did not arrive in time") from None
    head = RequestHead(method, target, version, fields)
    _check_host(head)
    return head


def _request_line(rfile: Reader) -> bytes | None:
    for _ in range(_MAX_LEADING_EMPTY_LINES + 1):
        try:
            raw = rfile.readline(MAX_REQUEST_LINE + 1)
        except TimeoutError:
            return None
        if not raw:
            return None
        if not raw.endswith(b"\n"):
            if len(raw) > MAX_REQUEST_LINE:
                raise FramingError(414, "the request line is longer than 64 KiB")
            raise FramingError(400, "the connection ended inside the request line")
        line = _without_eol(raw)
        if line:
            return line
    raise FramingError(400, "the request starts with empty lines instead of a request line")


def _parse_request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    parts = line.split(b" ")
    if len(parts) == 2:
        raise FramingError(400, "HTTP/0.9 requests are not supported: use HTTP/1.1")
    if len(parts) != 3:
        raise FramingError(400, "the request line is not 'method SP target SP HTTP/1.1'")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise FramingError(400, "the request method is not an HTTP token")
    matched = _VERSION.fullmatch(version)
    if matched is None:
        raise FramingError(400, "the request line does not end with an HTTP version")
    number = (int(matched[1]), int(matched[2]))
    if number[0] != 1:
        raise FramingError(505, "only HTTP/1.0 and HTTP/1.1 are served here")
    if not _TARGET.fullmatch(target):
        raise FramingError(400, "the request target has spaces, controls or non-ASCII bytes")
    text = target.decode("ascii")
    asterisk = text == "*" and method == b"OPTIONS"  # RFC 9112 3.2.4
    if not (text.startswith("/") or _ABSOLUTE.match(text) or asterisk):
        raise FramingError(400, "the request target must be a path or an absolute http URL")
    return method.decode("ascii"), text, number


def _read_fields(rfile: Reader) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    size = 0
    while True:
        raw = rfile.readline(MAX_HEADER_BYTES - size + 1)
        size += len(raw)
        if size > MAX_HEADER_BYTES:
            raise FramingError(431, "the request headers are larger than 64 KiB")
        if not raw.endswith(b"\n"):
            raise FramingError(400, "the connection ended inside the request headers")
        line = _without_eol(raw)
        if not line:
            return tuple(fields)
        if len(fields) == MAX_HEADER_FIELDS:
            raise FramingError(431, "the request has more than 100 header fields")
        fields.append(_parse_field(line))


def _parse_field(line: bytes) -> tuple[str, str]:
    if line[0] in b" \t":
        # RFC 9112 5.2: a server MAY reject obsolete line folding with 400.
        raise FramingError(400, "a header line starts with whitespace (obsolete line folding)")
    name, colon, value = line.partition(b":")
    if not colon:
        raise FramingError(400, "a header line has no colon")
    if not _TOKEN.fullmatch(name):
        # Includes whitespace before the colon, which RFC 9112 5.1 says MUST be rejected.
        raise FramingError(400, "a header field name is not an HTTP token")
    value = value.strip(b" \t")
    if _CONTROL.search(value):
        raise FramingError(400, "a header field value contains control characters")
    # Field values are bytes; Latin-1 maps each to one character, as the standard library does.
    return name.decode("ascii"), value.decode("latin-1")


def _check_host(head: RequestHead) -> None:
    hosts = head.values("host")
    if head.version >= (1, 1) and len(hosts) != 1:
        # RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host.
        raise FramingError(400, "an HTTP/1.1 request needs exactly one Host header")
    if len(hosts) > 1 or not _HOST.fullmatch(head.authority):
        raise FramingError(400, "the Host header (or the target's authority) is not a host")


def body_length(head: RequestHead) -> int | None:
    """The body's length from ``Content-Length``; ``None`` when it is chunked (RFC 9112 6.3)."""
    codings = [c.strip().lower() for v in head.values("transfer-encoding") for c in v.split(",")]
    lengths = head.values("content-length")
    if codings:
        if lengths:
            # Both framings at once is how requests are smuggled past proxies (RFC 9112 6.3).
            raise FramingError(400, "a request cannot have both Content-Length and chunking")
        if head.version < (1, 1):
            raise FramingError(400, "Transfer-Encoding needs HTTP/1.1")
        if codings != ["chunked"]:
            raise FramingError(501, "the only transfer coding served here is chunked")
        return None
    if not lengths:
        return 0
    # RFC 9110 8.6: a list of identical values may be read as that one value.
    values = {part.strip() for value in lengths for part in value.split(",")}
    text = values.pop() if len(values) == 1 else ""
    if not (text.isascii() and text.isdigit()):
        raise FramingError(400, "Content-Length is not one non-negative integer")
    if len(text) > 12 or int(text) > MAX_BODY_BYTES:
        raise FramingError(413, "the request body is larger than 100 MB")
    return int(text)


def read_body(rfile: Reader, length: int | None) -> bytes:
    """The whole body, as framed by ``body_length``."""
    try:
        if length is None:
            return _read_chunked(rfile)
        body = rfile.read(length)
    except TimeoutError:
        raise FramingError(408, "the request body did not arrive in time") from None
    if len(body) < length:
        raise FramingError(400, "the connection ended before Content-Length bytes of body")
    return body


def _read_chunked(rfile: Reader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_CHUNK_LINE + 1)
        if not line.endswith(b"\n"):
            raise FramingError(400, "a chunk size line is cut off or too long")
        size_text = _without_eol(line).split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise FramingError(400, "a chunk size is not a hexadecimal number")
        size = int(size_text, 16)
        if size == 0:
            _skip_trailers(rfile)
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise FramingError(413, "the request body is larger than 100 MB")
        chunk = rfile.read(size)
        if len(chunk) < size:
            raise FramingError(400, "the connection ended inside a chunk")
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise FramingError(400, "a chunk is longer than its announced size")
        chunks.append(chunk)


def _skip_trailers(rfile: Reader) -> None:
    # Trailer fields are read under the same limits as headers, and dropped (RFC 9110 6.5.1).
    try:
        _read_fields(rfile)
    except FramingError as exc:
        raise FramingError(exc.status, exc.detail.replace("headers", "trailers")) from None


def _without_eol(raw: bytes) -> bytes:
    # RFC 9112 2.2: CRLF ends a line; a lone LF may be accepted; a bare CR elsewhere is invalid.
    line = raw[:-2] if raw.endswith(b"\r\n") else raw.rstrip(b"\n")
    if b"\r" in line:
        raise FramingError(400, "a bare carriage return inside a line")
    return line
