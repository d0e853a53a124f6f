"""scim_core.store.transport against a scripted loopback server: pooling, stale connections, errors.

The store suites (tests/store, tests/e2e) run every storage request through this transport against
Azurite; these tests cover what Azurite does not do on demand: hang up on idle or busy
connections, stall, refuse.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.rest import HttpRequest

from scim_core.store.transport import HttpClientTransport, proxied

# What the server does with one connection: it gets the socket and the connection's ordinal.
Script = Callable[[socket.socket, int], None]


def _read_request(sock: socket.socket) -> bytes:
    """One request's head and Content-Length body, or b"" if the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _answer(sock: socket.socket, body: bytes, status: str = "200 OK", extra: str = "") -> None:
    sock.sendall(
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released after each connection is closed
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(sock, self.connections), daemon=True).start()

    def _run(self, sock: socket.socket, ordinal: int) -> None:
        with sock, contextlib.suppress(OSError):  # the client hung up first
            self.script(sock, ordinal)
        self.closed.release()

    def url(self, path: str = "/t") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def transport() -> Iterator[HttpClientTransport]:
    with HttpClientTransport() as transport:
        yield transport


def keep_alive(server_requests: list[bytes]) -> Script:
    """Answers every request on the connection with its own path, until the client closes."""

    def script(sock: socket.socket, ordinal: int) -> None:
        while request := _read_request(sock):
            server_requests.append(request)
            path = request.split(b" ", 2)[1]
            _answer(sock, b'{"path": "%s", "conn": %d}' % (path, ordinal))

    return script


def test_answers_keep_the_connection_and_carry_status_headers_and_body(serve, transport) -> None:
    seen: list[bytes] = []
    server = serve(keep_alive(seen))
    for n in range(3):
        request = HttpRequest("GET", server.url(f"/t{n}?a=1"), headers={"x-ms-version": "2019"})
        response = transport.send(request)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == {"path": f"/t{n}?a=1", "conn": 1}
    assert transport.connections_opened == 1
    assert server.connections == 1
    assert b"x-ms-version: 2019" in seen[0]


def test_text_body_is_sent_as_utf8_with_its_byte_length(serve, transport) -> None:
    seen: list[bytes] = []
    server = serve(keep_alive(seen))
    body = '{"name": "é"}'
    response = transport.send(HttpRequest("POST", server.url(), content=body))
    assert response.status_code == 200
    assert seen[0].endswith(body.encode("utf-8"))
    assert b"Content-Length: %d" % len(body.encode("utf-8")) in seen[0]


def test_idle_connection_closed_by_the_server_is_not_reused(serve, transport) -> None:
    # Like Node's keepAliveTimeout: the server answers, then closes the idle connection.
    def script(sock: socket.socket, ordinal: int) -> None:
        if _read_request(sock):
            _answer(sock, b'{"conn": %d}' % ordinal)

    server = serve(script)
    assert transport.send(HttpRequest("POST", server.url(), content=b"1")).json() == {"conn": 1}
    assert server.closed.acquire(timeout=5)  # the server has hung up on the idle connection
    answer = transport.send(HttpRequest("POST", server.url(), content=b"2")).json()
    assert answer == {"conn": 2}
    assert transport.connections_opened == 2


def test_reused_connection_dropped_mid_request_is_retried_on_a_new_one(serve, transport) -> None:
    # The race the poll cannot see: the server drops the connection as the request arrives,
    # without answering. The server never processed it, so sending it again is safe.
    def script(sock: socket.socket, ordinal: int) -> None:
        if ordinal == 1:
            if _read_request(sock):
                _answer(sock, b'{"conn": 1}')
            _read_request(sock)  # the second request: dropped unanswered
            sock.shutdown(socket.SHUT_RDWR)
            return
        while _read_request(sock):
            _answer(sock, b'{"conn": %d}' % ordinal)

    server = serve(script)
    assert transport.send(HttpRequest("POST", server.url(), content=b"1")).json() == {"conn": 1}
    assert transport.send(HttpRequest("POST", server.url(), content=b"2")).json() == {"conn": 2}
    assert transport.connections_opened == 2


def test_new_connection_dropped_without_an_answer_is_a_response_error(serve, transport) -> None:
    def script(sock: socket.socket, ordinal: int) -> None:
        _read_request(sock)
        sock.shutdown(socket.SHUT_RDWR)

    server = serve(script)
    with pytest.raises(ServiceResponseError):
        transport.send(HttpRequest("POST", server.url(), content=b"x"))
    assert server.connections == 1  # not sent twice: a new connection is not retried here


def test_refused_connection_is_a_request_error(transport) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(ServiceRequestError):
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/t"))


def test_slow_answer_is_a_response_timeout(serve, transport) -> None:
    release = threading.Event()

    def script(sock: socket.socket, ordinal: int) -> None:
        _read_request(sock)
        release.wait(5)

    server = serve(script)
    with pytest.raises(ServiceResponseTimeoutError):
        transport.send(HttpRequest("GET", server.url()), read_timeout=0.2)
    release.set()


def test_connection_close_answer_is_not_pooled(serve, transport) -> None:
    def script(sock: socket.socket, ordinal: int) -> None:
        if _read_request(sock):
            _answer(sock, b"{}", extra="Connection: close\r\n")

    server = serve(script)
    for _ in range(2):
        assert transport.send(HttpRequest("GET", server.url())).status_code == 200
    assert transport.connections_opened == 2


def test_error_status_is_an_answer_not_an_exception(serve, transport) -> None:
    def script(sock: socket.socket, ordinal: int) -> None:
        while _read_request(sock):
            _answer(sock, b'{"odata.error": {}}', status="404 Not Found")

    server = serve(script)
    response = transport.send(HttpRequest("GET", server.url()))
    assert response.status_code == 404
    assert response.reason == "Not Found"
    assert response.text() == '{"odata.error": {}}'


def test_concurrent_requests_use_a_connection_each_and_pool_them(serve, transport) -> None:
    seen: list[bytes] = []
    server = serve(keep_alive(seen))
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for n in range(25):
                response = transport.send(HttpRequest("GET", server.url(f"/w{n}")))
                assert response.json()["path"] == f"/w{n}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(seen) == 100
    assert transport.connections_opened <= 4


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "https://acct.table.core.windows.net", False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://acct.table.core.windows.net", True),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://127.0.0.1:10002/acct", False),
        (
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".core.windows.net"},
            "https://acct.table.core.windows.net",
            False,
        ),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://azurite:10002/acct", True),
    ],
)
def test_proxied_follows_the_environment(monkeypatch, env, url, expected) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxied(url) is expected


def _self_signed(tmp_path: Path, *, with_ip: bool = True) -> tuple[Path, Path]:
    """A certificate for localhost (and 127.0.0.1) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost")]
                + ([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if with_ip else [])
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tls_server(tmp_path: Path, serve, *, with_ip: bool = True) -> tuple[ScriptedServer, Path]:
    cert, key = _self_signed(tmp_path, with_ip=with_ip)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: list[bytes] = []
    plain = keep_alive(seen)

    def script(sock: socket.socket, ordinal: int) -> None:
        with context.wrap_socket(sock, server_side=True) as tls:
            plain(tls, ordinal)

    return serve(script), cert


@pytest.fixture
def tls_server(tmp_path: Path, serve) -> tuple[ScriptedServer, Path]:
    """A keep-alive server behind TLS (Azure Table Storage is HTTPS-only)."""
    return _tls_server(tmp_path, serve)


def test_https_verifies_the_server_against_the_ca_bundle(
    tls_server, transport, monkeypatch
) -> None:
    server, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # as requests would honour it
    for n in range(2):
        url = f"https://localhost:{server.port}/t{n}"
        response = transport.send(HttpRequest("GET", url))
        assert response.json() == {"path": f"/t{n}", "conn": 1}
    assert transport.connections_opened == 1  # the TLS connection is kept alive too


def test_https_refuses_an_untrusted_server(tls_server, transport, monkeypatch) -> None:
    server, _ = tls_server
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)  # certifi's bundle: the test CA is not in it
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        transport.send(HttpRequest("GET", f"https://localhost:{server.port}/t"))


def test_https_checks_the_host_name(tmp_path, serve, transport, monkeypatch) -> None:
    server, cert = _tls_server(tmp_path, serve, with_ip=False)  # names localhost only
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert transport.send(HttpRequest("GET", f"https://localhost:{server.port}/t")).json()
    with HttpClientTransport() as other, pytest.raises(ServiceRequestError, match="mismatch"):
        other.send(HttpRequest("GET", f"https://127.0.0.1:{server.port}/t"))


def test_an_origin_behind_a_proxy_goes_through_requests(serve, transport, monkeypatch) -> None:
    """The environment's proxy applies to storage.invalid: the request reaches the proxy (here
    the loopback server) in proxy form, with the absolute URL, through azure-core's requests
    transport; nothing resolves or contacts storage.invalid."""
    seen: list[bytes] = []
    proxy = serve(keep_alive(seen))
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    response = transport.send(HttpRequest("GET", "http://storage.invalid:10002/acct/t"))
    assert response.status_code == 200
    assert response.json()["path"] == "http://storage.invalid:10002/acct/t"
    assert transport.connections_opened == 0  # no http.client connection of its own
