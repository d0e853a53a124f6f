"""A small local stand-in for the Azure Functions host, serving the app over real HTTP.

Core Tools cannot be installed on our machines (its npm postinstall downloads the host from a CDN),
so ``LocalHost`` plays its part: it loads the app's functions once (``devhost.functions``) and
serves exactly its HTTP triggers on a threaded HTTP server bound to 127.0.0.1, so tests exercise
the same triggers Azure runs. Timer triggers run on demand: ``fire_timer(name)``, or
``POST /admin/functions/<name>`` as with Core Tools.

    with LocalHost("function_app", env={"TABLES_CONNECTION_STRING": ...}) as host:
        requests.get(f"{host.base_url}/scim/v2/Users")
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from devhost.functions import FunctionHost, Reply

log = logging.getLogger("devhost")

HOST = "127.0.0.1"
#: The Functions host rejects request bodies over 100 MB (``maxRequestBodySize``).
MAX_BODY_BYTES = 100 * 1024 * 1024
#: Headers the server computes itself from the body it sends; a function's copy would conflict.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Server(ThreadingHTTPServer):
    # Handler threads are daemons (the ThreadingHTTPServer default): a function stuck in a call
    # must not keep Ctrl-C from stopping the host.
    def __init__(self, address: tuple[str, int], functions: FunctionHost) -> None:
        super().__init__(address, _Handler)
        self.functions = functions


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive between requests, as Kestrel does for Entra's client.
    protocol_version = "HTTP/1.1"
    # Without it Nagle's algorithm holds the body back behind the headers: +40 ms a response.
    disable_nagle_algorithm = True
    server_version = "devhost"
    server: _Server

    # BaseHTTPRequestHandler dispatches on do_<METHOD>; every method goes to the same router.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True  # the rest of the body is still unread on the socket
            self._send(Reply(exc.status))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            # The host joins repeated headers with a comma (ASP.NET StringValues.ToString()).
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        authority = self.headers.get("Host") or f"{HOST}:{self.server.server_port}"
        url = self.path if "://" in self.path else f"http://{authority}{self.path}"
        self._send(self.server.functions.handle(self.command, url, headers, body))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest(400) from None
        if length < 0:
            raise _BadRequest(400)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413)
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400) from None
            if size == 0:
                while self.rfile.readline(65536).strip():  # trailers, up to the blank line
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _send(self, reply: Reply) -> None:
        bodiless = reply.status in (204, 304)  # HTTP forbids a body (and its length) on these
        self.send_response(reply.status)
        for name, value in reply.headers:
            if name.lower() not in _FRAMING_HEADERS:
                self.send_header(name, value)
        if not bodiless:
            self.send_header("Content-Length", str(len(reply.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not bodiless and self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        # The access log is debug detail; the invocation log lines are what the host prints.
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: object) -> None:
        log.warning("%s %s", self.address_string(), format % args)


@contextmanager
def applied_env(env: Mapping[str, str] | None) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the block; restore the previous values after it."""
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class LocalHost:
    """The app served on ``http://127.0.0.1:<port>`` (a context manager; or ``start()``/``stop()``).

    ``env`` is set in this process's environment from before the app module is executed until
    ``stop()`` (the app reads its settings from there, as in Azure), so run one host at a time.
    ``port=0`` lets the OS choose a free port; ``base_url`` tells which.
    """

    def __init__(
        self,
        module: str = "function_app",
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        app_dir: Path | None = None,
    ) -> None:
        self.module = module
        self.port = port
        self.env = dict(env or {})
        self.app_dir = app_dir
        self.functions: FunctionHost | None = None
        self._resources = ExitStack()  # what stop() undoes, last acquired first
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> LocalHost:
        if self._server is not None:
            raise RuntimeError("the host is already running")
        with ExitStack() as resources:
            resources.enter_context(applied_env(self.env))
            self.functions = FunctionHost(self.module, app_dir=self.app_dir)
            resources.callback(self.functions.close)
            self._server = _Server((HOST, self.port), self.functions)
            resources.callback(self._server.server_close)
            self._resources = resources.pop_all()  # success: keep them until stop()
        self.port = self._server.server_port
        # A short poll interval: shutdown() waits for the serving loop to notice, and tests stop
        # a host per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="devhost-http", daemon=True
        )
        self._thread.start()
        log.info("Serving %d functions on %s", len(self.functions.functions), self.base_url)
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join()
        self._resources.close()

    def fire_timer(self, name: str, *, past_due: bool = False) -> None:
        """Run the timer function ``name`` now, in this thread; its exception propagates."""
        if self.functions is None:
            raise RuntimeError("start() the host first")
        self.functions.fire_timer(name, past_due=past_due)

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
