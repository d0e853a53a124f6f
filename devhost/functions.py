"""The app's functions as the Azure Functions host and Python worker see them, and their invocation.

``FunctionHost`` imports the app module, asks the app for ``get_functions()`` once -- the index the
Python worker hands to the real host; the app refuses a second call -- and keeps the HTTP and timer
triggers. What it mirrors from the host and the worker:
- routes: host.json ``extensions.http.routePrefix`` (default ``api``) + each trigger's ``route``,
  matched as ASP.NET Core does (see ``devhost.routes``); a path no route matches is 404, a path
  whose routes exclude the method is 405;
- arguments: the trigger binding's ``name`` gets the ``func.HttpRequest``/``func.TimerRequest``, a
  parameter called ``context`` gets a ``func.Context``; any other parameter fails at load, as in
  the worker; async functions share one event loop, as in the worker;
- responses: ``func.HttpResponse`` status, headers and body, with the Content-Type the worker
  derives from ``mimetype``/``charset``; an unhandled exception is logged with its invocation id
  and answered 500 with an empty body, never a traceback.
Deliberate differences: no function keys (Core Tools does not check them either; we warn about
non-anonymous routes), no bindings besides the trigger and the HTTP return, and the admin endpoint
``POST /admin/functions/<name>`` runs the timer before answering, so its caller learns whether it
failed (the real one answers 202 at once). Unlike Core Tools, which skips the check locally, the
admin endpoint requires the host's key in ``x-functions-key`` and a JSON body, as Azure requires
the master key ("Manually run a non HTTP-triggered function",
https://learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http): a web page
open in the developer's browser can send a simple cross-site POST to 127.0.0.1, but neither a
custom header nor a JSON content type without a CORS preflight, which this host never grants.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import inspect
import json
import logging
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.functions import _abc  # the abstract trace/retry context types user code may check
from azure.functions.decorators.function_app import Function, FunctionRegister
from azure.functions.timer import TimerRequest

from devhost.reply import Reply, scim_error
from devhost.routes import RouteTemplate, RouteTemplateError, with_prefix

log = logging.getLogger("devhost")

_SUPPORTED_TRIGGERS = ("httpTrigger", "timerTrigger")


class DevHostError(RuntimeError):
    """The app cannot be loaded as the Functions host would load it, or a function is unknown."""


@dataclass(frozen=True)
class LoadedFunction:
    """A function of the app, with how the worker would call it."""

    name: str
    trigger_type: str
    trigger_arg: str
    wants_context: bool
    user_function: Any
    directory: str


@dataclass(frozen=True)
class HttpRoute:
    function: LoadedFunction
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method


class _TraceContext(_abc.TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    trace_parent = property(lambda self: self._trace_parent)
    trace_state = property(lambda self: "")
    attributes = property(lambda self: {})


class _RetryContext(_abc.RetryContext):
    retry_count = property(lambda self: 0)
    max_retry_count = property(lambda self: 0)
    exception = property(lambda self: None)


class InvocationContext(func.Context):
    """The ``context`` argument: what the worker passes, with a fresh invocation id."""

    def __init__(self, invocation_id: str, function: LoadedFunction, trace_parent: str) -> None:
        self._invocation_id = invocation_id
        self._function = function
        self._trace = _TraceContext(trace_parent)
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._function.name)
    function_directory = property(lambda self: self._function.directory)
    thread_local_storage = property(lambda self: self._local)
    trace_context = property(lambda self: self._trace)
    retry_context = property(lambda self: _RetryContext())


def read_route_prefix(app_dir: Path) -> str:
    """host.json ``extensions.http.routePrefix``; the host's default is ``api``."""
    host_json = app_dir / "host.json"
    if not host_json.exists():
        return "api"
    config = json.loads(host_json.read_text(encoding="utf-8"))
    prefix = config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix)


def import_app_module(name: str) -> ModuleType:
    """Execute the app module afresh, as a new worker process would.

    A FunctionApp can be indexed only once, so a module imported (and indexed) before -- by an
    earlier host in this process, or by a unit test -- is re-executed to get a new app.
    """
    existing = sys.modules.get(name)
    return importlib.reload(existing) if existing is not None else importlib.import_module(name)


def find_app(module: ModuleType) -> FunctionRegister:
    """The module's one FunctionApp; the worker also refuses zero or several."""
    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(apps) != 1:
        raise DevHostError(
            f"{module.__name__} must define exactly one FunctionApp, found {len(apps)}"
        )
    return apps[0]


def _load(function: Function, directory: str) -> LoadedFunction | None:
    """How the worker would call ``function``; ``None`` for triggers this host does not run."""
    name = function.get_function_name() or function.get_user_function().__name__
    trigger = function.get_trigger()
    assert trigger is not None  # get_functions() rejects functions without one
    trigger_repr = trigger.get_dict_repr()
    if trigger_repr["type"] not in _SUPPORTED_TRIGGERS:
        log.warning(
            "Function %s has a %s trigger; devhost does not run it", name, trigger_repr["type"]
        )
        return None
    trigger_arg = str(trigger_repr["name"])
    extra = [b.get_dict_repr() for b in function.get_bindings() if b is not trigger]
    unsupported = [b["type"] for b in extra if b["name"] != "$return"]
    if unsupported:
        raise DevHostError(
            f"cannot load the {name} function: devhost has no {unsupported} bindings"
        )
    # The worker's rule: a parameter named ``context`` gets the Context; every other parameter
    # must be a binding (azure-functions-python-worker, functions.py ``Registry.add_function``).
    params = set(inspect.signature(function.get_user_function()).parameters)
    wants_context = "context" in params and trigger_arg != "context"
    undeclared = params - {trigger_arg, "context"}
    if undeclared or trigger_arg not in params:
        raise DevHostError(
            f"cannot load the {name} function: parameters {sorted(params)} do not match its "
            f"trigger binding {trigger_arg!r} (plus an optional 'context')"
        )
    auth_level = getattr(trigger_repr.get("authLevel"), "value", trigger_repr.get("authLevel"))
    if auth_level not in (None, "anonymous"):
        log.warning(
            "Function %s has authLevel=%s: in Azure it needs a function key; devhost, like Core "
            "Tools, does not check keys",
            name,
            auth_level,
        )
    return LoadedFunction(
        name,
        str(trigger_repr["type"]),
        trigger_arg,
        wants_context,
        function.get_user_function(),
        directory,
    )


class _EventLoop:
    """One event loop, on its own thread, for every async function (as the worker keeps one), so a
    client created in one invocation keeps working in the next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, awaitable: Coroutine[Any, Any, Any]) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="devhost-asyncio", daemon=True
                )
                self._thread.start()
        return asyncio.run_coroutine_threadsafe(awaitable, self._loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


class FunctionHost:
    """The app's functions, indexed once, and how to invoke them (no network here)."""

    def __init__(
        self,
        module: str = "function_app",
        *,
        app_dir: Path | None = None,
        admin_key: str | None = None,
    ) -> None:
        # None: the admin endpoint refuses every call.
        self._admin_key = admin_key.encode() if admin_key else None
        loaded_module = import_app_module(module)
        app = find_app(loaded_module)
        directory = app_dir or Path(loaded_module.__file__ or ".").resolve().parent
        self.route_prefix = read_route_prefix(directory)
        self._loop = _EventLoop()
        self.functions: dict[str, LoadedFunction] = {}
        routes: list[HttpRoute] = []
        for function in app.get_functions():  # exactly once: a second call raises
            loaded = _load(function, str(directory))
            if loaded is None:
                continue
            self.functions[loaded.name] = loaded
            if loaded.trigger_type == "httpTrigger":
                routes.append(_http_route(loaded, function, self.route_prefix))
        # Most specific template first; sorted() is stable, so ties keep declaration order.
        self.routes = sorted(routes, key=lambda route: route.template.precedence)

    @property
    def timer_names(self) -> list[str]:
        return [f.name for f in self.functions.values() if f.trigger_type == "timerTrigger"]

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Route one HTTP request to its function and render the function's response."""
        parts = urlsplit(url)
        admin = RouteTemplate("admin/functions/{name}").match(parts.path)
        if admin is not None and method == "POST":
            return self._admin_invoke(admin["name"], headers)
        params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            # The host joins repeated query keys with a comma (ASP.NET StringValues.ToString()).
            params[key] = f"{params[key]},{value}" if key in params else value
        allowed: set[str] = set()
        for route in self.routes:
            route_params = route.template.match(parts.path)
            if route_params is None:
                continue
            if route.methods is not None and method not in route.methods:
                allowed |= route.methods
                continue
            request = func.HttpRequest(
                method, url, headers=headers, params=params, route_params=route_params, body=body
            )
            return self._invoke_http(route.function, request)
        if allowed:
            return Reply(405, [("Allow", ", ".join(sorted(allowed)))])
        return Reply(404)

    def fire_timer(self, name: str, *, past_due: bool = False) -> None:
        """Run the timer function ``name`` now; its exception, if any, propagates."""
        function = self.functions.get(name)
        if function is None or function.trigger_type != "timerTrigger":
            raise DevHostError(f"no timer function {name!r}; timers: {self.timer_names}")
        timer = TimerRequest(past_due=past_due, schedule={"AdjustForDST": True}, schedule_status={})
        self.invoke(function, timer, reason="fired on demand by devhost")

    def invoke(self, function: LoadedFunction, trigger_value: object, *, reason: str) -> Any:
        """Call the user function as the worker does, logging like the host."""
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, object] = {function.trigger_arg: trigger_value}
        if function.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, function, _trace_parent())
        log.info(
            "Executing 'Functions.%s' (Reason='%s', Id=%s)", function.name, reason, invocation_id
        )
        started = time.perf_counter()
        try:
            result = function.user_function(**kwargs)
            if inspect.iscoroutine(result):
                result = self._loop.run(result)
        except Exception:
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                function.name,
                invocation_id,
                (time.perf_counter() - started) * 1000,
            )
            raise
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            function.name,
            invocation_id,
            (time.perf_counter() - started) * 1000,
        )
        return result

    def close(self) -> None:
        self._loop.close()

    def _invoke_http(self, function: LoadedFunction, request: func.HttpRequest) -> Reply:
        try:
            result = self.invoke(function, request, reason="HTTP request")
        except Exception:
            return Reply(500)  # logged by invoke(); the client learns nothing of the internals
        if isinstance(result, func.HttpResponse):
            return _render(result)
        if isinstance(result, str):  # the worker's HTTP output binding also accepts a plain str
            return Reply(200, [("Content-Type", "text/plain; charset=utf-8")], result.encode())
        log.error("Function %s returned %r, not a func.HttpResponse", function.name, type(result))
        return Reply(500)

    def _admin_invoke(self, name: str, headers: Mapping[str, str]) -> Reply:
        # Core Tools' "run a non-HTTP function" endpoint. Names compare case-insensitively there.
        # The key is checked first, so a caller without it learns nothing, not even which names
        # are timers; compare_digest takes the same time wherever the first difference is.
        sent = headers.get("x-functions-key", "").encode("utf-8", "surrogateescape")
        if self._admin_key is None or not hmac.compare_digest(sent, self._admin_key):
            return scim_error(
                401, "admin calls need this host's key in x-functions-key (see --fire-timer)"
            )
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return scim_error(415, "admin calls need Content-Type: application/json")
        match = [t for t in self.timer_names if t.casefold() == name.casefold()]
        if not match:
            return scim_error(404, f"no timer function of that name; timers: {self.timer_names}")
        try:
            self.fire_timer(match[0])
        except Exception:
            return scim_error(500, f"{match[0]} failed; see the host's log")
        return Reply(202)


def _http_route(loaded: LoadedFunction, function: Function, prefix: str) -> HttpRoute:
    trigger = function.get_trigger()
    route = str(getattr(trigger, "route", None) or loaded.name)
    methods = getattr(trigger, "methods", None)
    allowed = (
        None if not methods else frozenset(str(getattr(m, "value", m)).upper() for m in methods)
    )
    try:
        template = RouteTemplate(with_prefix(prefix, route))
    except RouteTemplateError as exc:
        raise DevHostError(f"cannot load the {loaded.name} function: {exc}") from exc
    return HttpRoute(loaded, template, allowed)


def _render(response: func.HttpResponse) -> Reply:
    headers = list(response.headers.items())
    if not any(name.lower() == "content-type" for name, _ in headers):
        # Same default as the worker's HTTP output converter (azure.functions.http).
        mimetype = response.mimetype
        text = mimetype.startswith("text/")
        headers.append(
            ("Content-Type", f"{mimetype}; charset={response.charset}" if text else mimetype)
        )
    return Reply(int(response.status_code), headers, response.get_body() or b"")


def _trace_parent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
