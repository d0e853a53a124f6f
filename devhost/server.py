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
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from devhost.framing import (
    MAX_BODY_BYTES,
    MAX_REQUEST_LINE,
    FramingError,
    RequestHead,
    body_length,
    read_body,
    read_head,
)
from devhost.functions import FunctionHost
from devhost.reply import Reply, scim_error

__all__ = ["HOST", "MAX_BODY_BYTES", "LocalHost", "applied_env"]

log = logging.getLogger("devhost")

HOST = "127.0.0.1"
#: Methods routed to the app; any other is answered 501 before routing. RFC 9110 15.6.2 gives 501
#: to a method the server supports for no resource at all (TRACE, CONNECT, made-up ones); 405 is
#: for a method some resource supports, and stays the router's answer (with ``Allow``).
DISPATCHED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Connections waiting to be accepted. The standard library's 5 made a burst of 20 parallel
#: clients (Entra's workers, a thread pool) see resets; Linux caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024
#: A connection idle this long is closed, as Kestrel closes keep-alive connections after its
#: KeepAliveTimeout of 130 s ("KestrelServerLimits Class", Microsoft Learn); it is also the
#: longest a read inside a request may wait before the answer is 408.
SOCKET_TIMEOUT = 130.0
#: How long stop() waits for requests already being handled before stopping anyway.
DRAIN_TIMEOUT = 60.0
#: Headers the server computes itself from the body it sends; a function's copy would conflict.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class _Connections:
    """The server's open connections and how many are inside a request, for a graceful stop:
    ``drain()`` refuses new requests, closes idle connections and waits for the busy ones."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._idle: set[socket.socket] = set()
        self._busy = 0
        self.stopping = False

    def opened(self, sock: socket.socket) -> bool:
        with self._changed:
            if not self.stopping:
                self._idle.add(sock)
            return not self.stopping

    def closed(self, sock: socket.socket) -> None:
        with self._changed:
            self._idle.discard(sock)

    def begin(self, sock: socket.socket) -> bool:
        """Mark a request as being handled; ``False`` once the host is stopping."""
        with self._changed:
            if self.stopping:
                return False
            self._idle.discard(sock)
            self._busy += 1
            return True

    def end(self, sock: socket.socket) -> None:
        with self._changed:
            self._busy -= 1
            if not self.stopping:
                self._idle.add(sock)
            self._changed.notify_all()

    def drain(self, timeout: float) -> int:
        """Stop taking requests, finish those in progress; the number still running after
        ``timeout`` seconds."""
        with self._changed:
            self.stopping = True
            for sock in self._idle:
                # A handler waiting for the next request on a keep-alive connection reads EOF
                # and closes it; its write side stays open for an answer already under way.
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            if self._busy:
                log.info("Waiting for %d request(s) in progress", self._busy)
            self._changed.wait_for(lambda: self._busy == 0, timeout)
            return self._busy


class _Server(ThreadingHTTPServer):
    # Handler threads are daemons (the ThreadingHTTPServer default): a function stuck in a call
    # must not keep the process alive forever; stop() waits for them, up to DRAIN_TIMEOUT.
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], functions: FunctionHost) -> None:
        self.functions = functions
        self.connections = _Connections()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """One connection: requests are read with ``devhost.framing`` (not the standard library's
    lenient parser), routed to the app, and every refusal is a SCIM error."""

    # HTTP/1.1 keeps connections alive between requests, as Kestrel does for Entra's client.
    protocol_version = "HTTP/1.1"
    # Without it Nagle's algorithm holds the body back behind the headers: +40 ms a response.
    disable_nagle_algorithm = True
    server_version = "devhost"
    sys_version = ""  # the Server header need not tell which Python runs the host
    timeout = SOCKET_TIMEOUT
    server: _Server

    def handle(self) -> None:
        connections = self.server.connections
        if not connections.opened(self.connection):
            return  # accepted while the host was stopping: closed unanswered, like a refusal
        try:
            super().handle()  # handle_one_request() until the connection is to be closed
        finally:
            connections.closed(self.connection)

    def handle_one_request(self) -> None:
        # Until a request says otherwise; and any answer before a request line is HTTP/1.1.
        self.close_connection = True
        self.command, self.requestline, self.request_version = "", "", "HTTP/1.1"
        try:
            head = read_head(self.rfile)
            if head is None:
                return
            self.command, self.path = head.method, head.target
            self.requestline = f"{head.method} {head.target[:200]} {head.version_text}"
            self.request_version = head.version_text
            self._accept(head)
            length = body_length(head)
            self._expect(head)
        except FramingError as exc:
            self._refuse(exc)
            return
        except OSError:
            return  # the client went away
        if not self.server.connections.begin(self.connection):
            self._send(scim_error(503, "the local host is stopping", [("Retry-After", "5")]))
            return
        try:
            self._serve(head, length)
        except OSError:
            self.close_connection = True  # the client went away mid-answer
        finally:
            self.server.connections.end(self.connection)

    def _accept(self, head: RequestHead) -> None:
        if head.method not in DISPATCHED_METHODS:
            raise FramingError(501, f"the method {head.method[:40]} is not served here")

    def _expect(self, head: RequestHead) -> None:
        expectations = {v.strip().lower() for v in head.values("expect")}
        if not expectations:
            return
        if expectations != {"100-continue"}:
            # RFC 9110 10.1.1: an expectation other than 100-continue MAY be answered 417.
            raise FramingError(417, "the only expectation served here is 100-continue")
        if head.version >= (1, 1):
            self.send_response_only(100)
            self.end_headers()

    def _serve(self, head: RequestHead, length: int | None) -> None:
        try:
            body = read_body(self.rfile, length)
        except FramingError as exc:
            self._refuse(exc)
            return
        self.close_connection = not head.keep_alive
        try:
            reply = self._route(head, body)
        except Exception:
            # A bug in devhost itself (the app's own exceptions are caught by FunctionHost):
            # logged here with its traceback, never sent.
            log.exception("devhost failed on %s", self.requestline)
            reply = scim_error(500, "the local host failed on this request; see its log")
        if self.server.connections.stopping:
            self.close_connection = True
        self._send(reply)
        self.wfile.flush()

    def _route(self, head: RequestHead, body: bytes) -> Reply:
        if head.target == "*":  # OPTIONS * asks about the server itself (RFC 9110 9.3.7)
            return Reply(204, [("Allow", ", ".join(sorted(DISPATCHED_METHODS)))])
        headers: dict[str, str] = {}
        for name, value in head.fields:
            # The host joins repeated headers with a comma (ASP.NET StringValues.ToString()).
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        authority = head.authority or f"{HOST}:{self.server.server_port}"
        url = head.target if "://" in head.target else f"http://{authority}{head.target}"
        return self.server.functions.handle(head.method, url, headers, body)

    def _refuse(self, exc: FramingError) -> None:
        log.info("Refused a request from %s: %d %s", self.address_string(), exc.status, exc.detail)
        self.close_connection = True  # what follows on the socket cannot be framed any more
        try:
            self._send(scim_error(exc.status, exc.detail))
            self.wfile.flush()
            self._linger()
        except OSError:
            pass

    def _linger(self) -> None:
        """Read and drop what the client is still sending, briefly, before the socket closes:
        closing with unread bytes makes the kernel send a reset, which can destroy the error
        response before the client reads it (RFC 9112 9.6, "tear-down")."""
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(1.0)
        dropped = 0
        try:
            while dropped < 8 * MAX_REQUEST_LINE and (data := self.connection.recv(65536)):
                dropped += len(data)
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Nothing here calls the standard library's HTML error page; should a path of the base
        # class still do so, it gets a SCIM error too.
        self._refuse(FramingError(code, message or self.responses.get(code, ("error",))[0]))

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
    ``port=0`` lets the OS choose a free port; ``base_url`` tells which. ``admin_key`` is what
    ``POST /admin/functions/<name>`` requires in ``x-functions-key`` (the master key's role in
    Azure); by default a fresh random one per host.
    """

    def __init__(
        self,
        module: str = "function_app",
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        app_dir: Path | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.module = module
        self.port = port
        self.env = dict(env or {})
        self.app_dir = app_dir
        self.admin_key = admin_key or secrets.token_urlsafe(32)
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
            self.functions = FunctionHost(
                self.module, app_dir=self.app_dir, admin_key=self.admin_key
            )
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

    def stop(self, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        """Stop gracefully: accept no more connections, refuse new requests on open ones, let
        those in progress finish (up to ``drain_timeout`` seconds), then release the app."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join()
        if server is not None:
            # Refuse new connections now (the OS would otherwise queue them unanswered), then
            # let the open ones finish what they are doing.
            server.server_close()
            running = server.connections.drain(drain_timeout)
            if running:
                log.warning("Stopping with %d request(s) still running", running)
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
