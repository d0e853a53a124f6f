"""An azure-core transport on the standard library's ``http.client``, with keep-alive pooling.

azure-core's default transport goes through requests and urllib3. For the small, frequent
requests a SCIM endpoint makes to Table Storage (a point read is ~1 KB each way) that stack was
the largest cost of an operation: ~40% of our process's CPU under the Entra cycle and ~90 ms of
imports on a cold start (bench/README.md, "Fixes"). This transport sends the same requests, signed
and retried by the same azure-core pipeline, over pooled ``http.client`` connections.

What it keeps from the requests transport: connection and read timeouts (the pipeline's
``connection_timeout``/``read_timeout``), the CA bundle requests would use (``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``, else certifi's), no redirects followed (azure-core's RedirectPolicy decides),
and the error classes the retry policy acts on: a failure to connect or to send is a
:class:`ServiceRequestError` (retried), a failure while reading the answer a
:class:`ServiceResponseError` (retried only for idempotent methods). What it does not do itself:
proxies. When the environment routes an origin through one (:func:`proxied`), requests to that
origin go through azure-core's requests transport instead.

A pooled connection may have been closed by the server while idle (Azurite closes them after 5 s,
Azure after minutes). Before reuse it is polled, as urllib3 does, and dropped if the peer has
hung up; a reused connection that fails before any byte of the answer arrives is retried once on
a new connection, since the server then never saw the request.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import weakref
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.transport import HttpTransport

# Private to the pinned azure-core (1.41.0), as in scim_core.store.batch: the rest response built
# on an http.client response, which the SDK itself uses for the parts of a batch answer.
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse

DEFAULT_TIMEOUT = 300.0  # azure-core's default connection and read timeouts
MAX_IDLE_PER_HOST = 32
_RESET = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)

Origin = tuple[str, str, int]


class _Response(RestHttpClientTransportResponse):
    """The SDK's response over an ``http.client`` response whose body has already been read, so
    that the connection is back in the pool before the pipeline looks at the answer."""

    def __init__(self, *, request: Any, internal_response: Any, body: bytes) -> None:
        super().__init__(request=request, internal_response=internal_response)  # type: ignore[no-untyped-call]
        self._content = body


def proxied(url: str) -> bool:
    """Whether the environment (``HTTPS_PROXY`` and friends, ``NO_PROXY``) routes ``url`` through
    a proxy, which this transport does not support."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return False  # the common case, without importing urllib.request (~3 ms cold)
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class HttpClientTransport(HttpTransport):  # type: ignore[type-arg]
    """A thread-safe azure-core transport: one ``http.client`` connection per request in flight,
    idle connections pooled per origin (scheme, host, port)."""

    def __init__(
        self,
        *,
        connection_timeout: float = DEFAULT_TIMEOUT,
        read_timeout: float = DEFAULT_TIMEOUT,
        max_idle_per_host: int = MAX_IDLE_PER_HOST,
    ) -> None:
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._proxied: dict[Origin, bool] = {}  # the environment is fixed for a worker's life
        self._requests: HttpTransport | None = None  # type: ignore[type-arg]
        self.connections_opened = 0
        # A store nobody closed (a worker's whole life, in Azure) still closes its sockets when
        # it is collected or the interpreter exits, rather than leaving it to ResourceWarnings.
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    # --- HttpTransport ------------------------------------------------------------------------

    def open(self) -> None:
        """Connections are opened on demand."""

    def close(self) -> None:
        _close_idle(self._idle, self._lock)
        if self._requests is not None:
            self._requests.close()

    def __enter__(self) -> HttpClientTransport:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request`` (an ``azure.core.rest.HttpRequest``) and return the SDK's response
        with its body read. ``stream`` makes no difference: answers are small."""
        connect_timeout = float(kwargs.get("connection_timeout", self.connection_timeout))
        read_timeout = float(kwargs.get("read_timeout", self.read_timeout))
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ServiceRequestError(f"cannot send to {request.url!r}")
        origin: Origin = (scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))
        if self._through_proxy(origin, request.url):
            return self._requests_transport().send(request, **kwargs)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        body = _body(request)
        headers = dict(request.headers)
        if isinstance(request.content, str):
            # azure-core sets Content-Length to the length of the *text* (rest/_helpers.py,
            # set_content_body); what goes on the wire is its UTF-8 encoding.
            for name in [name for name in headers if name.lower() == "content-length"]:
                del headers[name]
            headers["Content-Length"] = str(len(body or b""))

        for attempt in (1, 2):
            connection, reused = self._acquire(origin, connect_timeout)
            try:
                internal, data = self._exchange(
                    connection, request.method, target, body, headers, read_timeout
                )
            except _Retryable as exc:
                connection.close()
                if reused and attempt == 1:
                    continue  # the server hung up on an idle connection; it never saw this one
                raise ServiceResponseError(str(exc.cause), error=exc.cause) from exc.cause
            except BaseException:
                connection.close()
                raise
            if internal.will_close:
                connection.close()
            else:
                self._release(origin, connection)
            return _Response(request=request, internal_response=internal, body=data)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- proxies ------------------------------------------------------------------------------

    def _through_proxy(self, origin: Origin, url: str) -> bool:
        known = self._proxied.get(origin)
        if known is None:
            known = self._proxied[origin] = proxied(url)
        return known

    def _requests_transport(self) -> HttpTransport:  # type: ignore[type-arg]
        with self._lock:
            if self._requests is None:
                from azure.core.pipeline.transport import RequestsTransport

                self._requests = RequestsTransport()
            return self._requests

    # --- connections --------------------------------------------------------------------------

    def _acquire(self, origin: Origin, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                pool = self._idle.get(origin)
                connection = pool.pop() if pool else None
            if connection is None:
                return self._connect(origin, timeout), False
            if _alive(connection):
                return connection, True
            connection.close()

    def _release(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            pool = self._idle.setdefault(origin, [])
            if len(pool) < self.max_idle_per_host:
                pool.append(connection)
                return
        connection.close()

    def _connect(self, origin: Origin, timeout: float) -> http.client.HTTPConnection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._ssl_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            message = f"connecting to {host}:{port}: {exc}"
            raise ServiceRequestTimeoutError(message, error=exc) from exc
        except OSError as exc:
            connection.close()
            raise ServiceRequestError(f"connecting to {host}:{port}: {exc}", error=exc) from exc
        sock = connection.sock
        if sock is not None:
            # Requests are a few packets each way; do not let Nagle's algorithm hold the last one.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections_opened += 1
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=_ca_bundle())
        return self._ssl

    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        read_timeout: float,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """One request and its whole answer. Failures before any byte of the answer are
        :class:`_Retryable` (the caller decides); later ones are ServiceResponseError."""
        try:
            connection.request(method, target, body=body, headers=headers)
        except TimeoutError as exc:
            raise ServiceRequestTimeoutError(f"sending: {exc}", error=exc) from exc
        except _RESET as exc:
            raise _Retryable(exc) from exc
        except OSError as exc:
            raise ServiceRequestError(f"sending: {exc}", error=exc) from exc
        sock = connection.sock
        if sock is not None:
            sock.settimeout(read_timeout)
        try:
            response = connection.getresponse()
        except TimeoutError as exc:
            raise ServiceResponseTimeoutError(f"waiting for the answer: {exc}", error=exc) from exc
        except _RESET as exc:
            raise _Retryable(exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ServiceResponseError(f"reading the answer: {exc}", error=exc) from exc
        try:
            data = response.read()
        except TimeoutError as exc:
            raise ServiceResponseTimeoutError(f"reading the answer: {exc}", error=exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ServiceResponseError(f"reading the answer: {exc}", error=exc) from exc
        return response, data


def _close_idle(idle: dict[Origin, list[http.client.HTTPConnection]], lock: threading.Lock) -> None:
    with lock:
        connections = [c for pool in idle.values() for c in pool]
        idle.clear()
    for connection in connections:
        connection.close()


class _Retryable(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _alive(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is usable if its socket has nothing to read: readable means the peer
    closed it (EOF) or sent something unasked for, and either way it cannot carry a request."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        poller = select.poll()  # not select.select: that refuses descriptors above 1023
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _body(request: Any) -> bytes | None:
    content = request.content
    if content is None or content == b"" or content == "":
        return None if request.method in ("GET", "HEAD", "DELETE") else b""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, bytearray | memoryview):
        return bytes(content)
    if hasattr(content, "read"):
        return cast(bytes, content.read())
    if isinstance(content, Iterator):
        return b"".join(content)
    raise ServiceRequestError(f"unsupported request body {type(content).__name__}")


def _ca_bundle() -> str | None:
    """The CA bundle requests would verify with: its environment variables, else certifi's."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import certifi  # requests' own bundle; present wherever azure-core is
    except ImportError:  # pragma: no cover - then the system store
        return None
    return certifi.where()


class RequestCounter:
    """Counts HTTP requests sent to storage (tests and benchmarks assert on storage cost).

    Installed as the client's ``raw_request_hook``: azure-core's CustomHookPolicy is in the policy
    list a TableServiceClient hands to the TableClients it makes, whereas ``per_call_policies``
    reach only the service client's own pipeline. It runs after the retry policy, so every
    attempt counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, request: PipelineRequest[Any]) -> None:
        with self._lock:
            self.count += 1


#: Default bound on one storage call, retries included (seconds): well under Entra's request
#: timeout, so a storage outage is answered 503 + Retry-After while Entra still listens.
DEFAULT_TIMEOUT = 5.0


def bound(kwargs: dict[str, Any]) -> None:
    """Bounds every storage call by ``storage_timeout`` (seconds): each attempt's connect and
    read, and the retry policy's total (azure-core's RetryPolicy ``timeout`` ends the retries
    when it has elapsed and shortens the last attempt to what is left), so retries never
    multiply the bound. A storage process that accepts connections and never answers then
    costs one bounded wait, answered 503 (``scim_core.store.errors.translated``)."""
    limit = float(kwargs.pop("storage_timeout", DEFAULT_TIMEOUT))
    # The SDK applies connection_timeout/read_timeout only to a transport it builds itself.
    kwargs.setdefault(
        "transport", HttpClientTransport(connection_timeout=limit, read_timeout=limit)
    )
    kwargs.setdefault("timeout", limit)
    # The policy's sleep between tries is not counted against ``timeout`` before it starts:
    # keep each sleep short enough that tries and sleeps together stay near the bound.
    kwargs.setdefault("retry_backoff_max", limit / 4)
