"""What the local host answers to malformed HTTP, sent byte for byte over raw sockets.

Every refusal is a SCIM error (RFC 7644 3.12) with the status RFC 9112/9110 give the fault, never
the standard library's HTML page, a traceback, a 500 or silence (issue 10, section 2). Valid but
unusual requests are still served.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost import server
from devhost.server import LocalHost

SAMPLE = "tests.devhost.sample_app"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
#: What a request that the host refuses before routing can be answered.
TRANSPORT_STATUSES = {400, 408, 413, 414, 417, 431, 501, 505}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


def parse_response(raw: bytes) -> RawResponse:
    """The first response in ``raw`` (after any interim 100 Continue)."""
    while raw.startswith(b"HTTP/1.1 100 "):
        raw = raw[raw.index(b"\r\n\r\n") + 4 :]
    head, separator, rest = raw.partition(b"\r\n\r\n")
    assert separator, f"no complete response head in {raw[:300]!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, status, _ = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return RawResponse(int(status), headers, rest[:length], raw)


def exchange(port: int, request: bytes, *, half_close: bool = True) -> RawResponse:
    """Send ``request``, signal the end of it (half-close), read until the host closes."""
    with socket.create_connection((server.HOST, port), timeout=10) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the host may answer and close before it has read everything
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return parse_response(received)


def assert_scim_error(response: RawResponse, status: int) -> None:
    assert response.status == status, response.raw[:400]
    assert response.headers["content-type"] == "application/scim+json"
    assert response.headers["connection"] == "close"
    body = json.loads(response.body)
    assert body["schemas"] == [SCIM_ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    assert b"<html" not in response.raw.lower()
    assert b"Traceback" not in response.raw


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHost]:
    """The sample app with ``routePrefix: ""``, shared by the module: every test leaves it
    serving, which ``still_serving`` checks."""
    app_dir = tmp_path_factory.mktemp("transport-app")
    (app_dir / "host.json").write_text(
        '{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}', encoding="utf-8"
    )
    with LocalHost(SAMPLE, app_dir=app_dir) as running:
        yield running


@pytest.fixture
def still_serving(host: LocalHost) -> Iterator[LocalHost]:
    yield host
    after = exchange(host.port, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    assert after.status == 200


GET = b"GET /plain HTTP/1.1\r\nHost: x\r\n"
POST = b"POST /scim/v2/Users/.search HTTP/1.1\r\nHost: x\r\n"

MALFORMED = [
    # --- the request line
    ("garbage", b"GARBAGE\r\n\r\n", 400),
    ("http-0.9", b"GET /plain\r\n\r\n", 400),
    ("four-words", b"GET /plain HTTP/1.1 more\r\nHost: x\r\n\r\n", 400),
    ("double-space", b"GET  /plain HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no-http-version", b"GET /plain FOO/1.1\r\nHost: x\r\n\r\n", 400),
    ("version-not-digits", b"GET /plain HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    ("http-2", b"GET /plain HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("http-3", b"GET /plain HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ("method-not-token", b"G(T /plain HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-not-a-path", b"GET plain HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-control-byte", b"GET /pl\x01ain HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-raw-utf8", b"GET /pl\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("target-asterisk-not-options", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("request-line-over-64k", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    ("only-empty-lines", b"\r\n" * 10, 400),
    ("bare-cr-in-request-line", b"GET /plain\rHTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("request-line-cut-off", b"GET /plain HTT", 400),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40), 400),
    # --- the method
    ("trace", b"TRACE /plain HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("made-up-method", b"FROBNICATE /plain HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 400),
    # --- the headers
    ("header-without-colon", GET + b"Foo\r\nBar: 1\r\n\r\n", 400),
    ("first-header-without-colon", b"GET /plain HTTP/1.1\r\nFoo\r\nHost: x\r\n\r\n", 400),
    ("space-before-colon", b"GET /plain HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("obsolete-line-folding", GET + b"X-A: 1\r\n continued\r\n\r\n", 400),
    ("name-not-token", GET + b"X(A): 1\r\n\r\n", 400),
    ("empty-name", GET + b": 1\r\n\r\n", 400),
    ("nul-in-value", GET + b"X-A: a\x00b\r\n\r\n", 400),
    ("bare-cr-in-value", GET + b"X-A: a\rb\r\n\r\n", 400),
    ("100-kb-authorization", GET + b"Authorization: Bearer " + b"a" * 100_000 + b"\r\n\r\n", 431),
    ("headers-over-64k", GET + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 900) for i in range(80)), 431),
    ("101-fields", GET + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    ("missing-host", b"GET /plain HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", GET + b"Host: y\r\n\r\n", 400),
    ("host-unclosed-ipv6", b"GET /plain HTTP/1.1\r\nHost: [\r\n\r\n", 400),
    ("host-with-space", b"GET /plain HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("host-with-path", b"GET /plain HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("absolute-target-bad-authority", b"GET http://[/plain HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("headers-cut-off", GET + b"X-A: 1", 400),
    ("expect-unknown", GET + b"Expect: teapot\r\n\r\n", 417),
    # --- the body
    ("content-length-letters", POST + b"Content-Length: abc\r\n\r\n", 400),
    ("content-length-negative", POST + b"Content-Length: -1\r\n\r\n", 400),
    ("content-length-plus-sign", POST + b"Content-Length: +3\r\n\r\nabc", 400),
    ("content-length-hex", POST + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("content-lengths-differ", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("content-length-list-differs", POST + b"Content-Length: 3, 4\r\n\r\nabcd", 400),
    ("content-length-over-100mb", POST + b"Content-Length: 104857601\r\n\r\n", 413),
    ("content-length-20-digits", POST + b"Content-Length: 99999999999999999999\r\n\r\n", 413),
    ("body-cut-off", POST + b"Content-Length: 10\r\n\r\nabc", 400),
    (
        "content-length-and-chunked",
        POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    ("gzip-transfer-coding", POST + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("chunked-not-last", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    ("chunked-in-http-1.0", b"POST /plain HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ("chunk-size-not-hex", POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400),
    ("chunk-size-empty", POST + b"Transfer-Encoding: chunked\r\n\r\n\r\n", 400),
    ("chunk-size-huge", POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 20 + b"\r\n", 400),
    ("chunk-cut-off", POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", 400),
    (
        "chunk-longer-than-size",
        POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n",
        400,
    ),
    ("chunked-no-last-chunk", POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", 400),
    ("trailer-without-colon", POST + b"Transfer-Encoding: chunked\r\n\r\n0\r\nFoo\r\n\r\n", 400),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(request, status) for _, request, status in MALFORMED],
    ids=[name for name, _, _ in MALFORMED],
)
def test_malformed_http_gets_a_scim_error(
    still_serving: LocalHost, request_bytes: bytes, status: int
) -> None:
    """RFC 9112 (request line, fields, framing) and RFC 9110 (501, 505, 417, 431) say which
    status; the body is a SCIM error and the connection is closed, since what follows on it can
    no longer be framed."""
    assert_scim_error(exchange(still_serving.port, request_bytes), status)


SERVED = [
    ("empty-line-before-request", b"\r\n" + GET + b"\r\n", 200),  # RFC 9112 2.2
    ("lone-lf-line-ends", b"GET /plain HTTP/1.1\nHost: x\n\n", 200),  # RFC 9112 2.2
    ("http-1.0-without-host", b"GET /plain HTTP/1.0\r\n\r\n", 200),
    ("absolute-form-target", b"GET http://x/plain HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    ("ipv6-host", b"GET /plain HTTP/1.1\r\nHost: [::1]:7071\r\n\r\n", 200),
    ("empty-host", b"GET /plain HTTP/1.1\r\nHost:\r\n\r\n", 200),  # RFC 9112 3.2
    ("expect-100-continue", POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", 200),
    ("same-content-length-twice", POST + b"Content-Length: 2, 2\r\n\r\n{}", 200),
    (
        "chunked-with-extension",
        POST + b"Transfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n",
        200,
    ),
    (
        "chunked-with-trailer",
        POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nT: 1\r\n\r\n",
        200,
    ),
    ("options-asterisk", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 204),
    ("latin-1-header-value", GET + b"X-A: caf\xe9\r\n\r\n", 200),
    ("64-kib-query", b"GET /plain?q=" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 200),
]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(request, status) for _, request, status in SERVED],
    ids=[name for name, _, _ in SERVED],
)
def test_unusual_but_valid_http_is_served(
    still_serving: LocalHost, request_bytes: bytes, status: int
) -> None:
    """What RFC 9112 lets a server accept is routed to the app as usual."""
    assert exchange(still_serving.port, request_bytes).status == status


def test_a_request_body_that_stalls_gets_a_408(
    still_serving: LocalHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that stops sending inside a request is answered 408 once the socket's read
    timeout runs out (130 s by default; shortened here)."""
    monkeypatch.setattr(server._Handler, "timeout", 0.5)
    request = POST + b"Content-Length: 10\r\n\r\nabc"
    response = exchange(still_serving.port, request, half_close=False)
    assert_scim_error(response, 408)


def test_an_idle_connection_is_closed_without_an_answer(
    still_serving: LocalHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keep-alive connection with no request is closed quietly at the timeout, as Kestrel does
    after its KeepAliveTimeout."""
    monkeypatch.setattr(server._Handler, "timeout", 0.3)
    with socket.create_connection((server.HOST, still_serving.port), timeout=10) as sock:
        assert sock.recv(1024) == b""


def test_a_keep_alive_connection_serves_requests_after_a_routed_error(
    still_serving: LocalHost,
) -> None:
    """Only framing errors close the connection; a 404 from routing keeps it."""
    with socket.create_connection((server.HOST, still_serving.port), timeout=10) as sock:
        sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n" + GET + b"\r\n")
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    first = parse_response(received)
    assert first.status == 404
    second = parse_response(received[received.index(b"HTTP/1.1", 10) :])
    assert second.status == 200


# --- generated garbage -------------------------------------------------------------------------

_METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"TRACE", b"G T", b""])
_TARGETS = st.sampled_from([b"/plain", b"/scim/v2/Users/1", b"*", b"/", b"plain", b"//x", b""])
_VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1x", b"http/1.1", b""])
_NOISE = st.binary(max_size=40)


@st.composite
def garbage_requests(draw: st.DrawFn) -> bytes:
    """Requests near the grammar (real pieces with noise spliced in) and pure noise."""
    if draw(st.booleans()):
        return draw(st.binary(min_size=1, max_size=300)) + b"\r\n\r\n"
    pieces = [draw(_METHODS), draw(_TARGETS) + draw(_NOISE), draw(_VERSIONS)]
    line = draw(st.sampled_from([b" ", b"  ", b"\t", b" \r "])).join(pieces)
    fields = draw(
        st.lists(
            st.one_of(
                st.just(b"Host: x"),
                st.builds(lambda n, v: n + b":" + v, st.binary(max_size=12), _NOISE),
                _NOISE,
            ),
            max_size=6,
        )
    )
    body = draw(_NOISE)
    return b"\r\n".join([line, *fields]) + b"\r\n\r\n" + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_bytes=garbage_requests())
def test_generated_garbage_never_gets_a_500_or_html(host: LocalHost, request_bytes: bytes) -> None:
    """Whatever arrives, the answer is a complete HTTP/1.1 response: a SCIM error when the host
    refuses the request, or the sample app's own answer when it is routable; never 500, HTML or
    a dropped connection."""
    response = exchange(host.port, request_bytes)
    assert response.status != 500
    assert b"<html" not in response.raw.lower()
    if response.headers.get("content-type") == "application/scim+json":
        assert response.status in TRANSPORT_STATUSES
        assert json.loads(response.body)["schemas"] == [SCIM_ERROR]
    else:
        # Routed: the app's echo, a route's 204, or the router's bare 404/405.
        assert response.status in {200, 201, 204, 404, 405}, response.raw[:300]


# --- a burst of connections ---------------------------------------------------------------------


def test_a_burst_of_300_connections_is_queued_not_reset(host: LocalHost) -> None:
    """Entra's parallel workers, an app's thread pool or a uniqueness-race check open many
    connections at once: with the standard library's listen backlog of 5 some were reset
    (issue 10, section 2). Each of 300 simultaneous clients gets its answer."""
    clients = 300
    start = threading.Barrier(clients)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def client() -> None:
        start.wait()
        try:
            with socket.create_connection((server.HOST, host.port), timeout=30) as sock:
                sock.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
            outcome: int | str = parse_response(received).status
        except (OSError, AssertionError) as exc:
            outcome = repr(exc)
        with lock:
            statuses.append(outcome)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failures = [s for s in statuses if s != 200]
    assert (len(statuses), failures) == (clients, [])
    # Queued connections are answered at once; dropped SYNs would cost 1 s retransmits.
    assert time.monotonic() - started < 10
