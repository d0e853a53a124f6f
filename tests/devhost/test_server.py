"""The local Functions host serves an app's triggers the way the Azure Functions host does.

Every HTTP test goes through a real server on 127.0.0.1, serving ``sample_app``.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
import requests

from devhost.__main__ import _bearer_token
from devhost.functions import DevHostError
from devhost.server import LocalHost
from tests.devhost import sample_app

SAMPLE = "tests.devhost.sample_app"
ROOT = Path(__file__).resolve().parents[2]


def write_host_json(directory: Path, route_prefix: str | None) -> Path:
    config: dict[str, Any] = {"version": "2.0"}
    if route_prefix is not None:
        config["extensions"] = {"http": {"routePrefix": route_prefix}}
    (directory / "host.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


@pytest.fixture
def host(tmp_path: Path) -> Iterator[LocalHost]:
    """The sample app served with ``routePrefix: ""``, as our host.json sets it."""
    with LocalHost(SAMPLE, app_dir=write_host_json(tmp_path, "")) as running:
        yield running


def echo(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    seen: dict[str, Any] = response.json()
    return seen


# --- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "function", "route_params"),
    [
        ("GET", "/scim/v2/Users/abc", "get_user", {"id": "abc"}),
        ("DELETE", "/scim/v2/Users/abc", "get_user", {"id": "abc"}),
        ("GET", "/SCIM/V2/users/abc", "get_user", {"id": "abc"}),
        ("GET", "/scim/v2/Users/abc/", "get_user", {"id": "abc"}),
        ("GET", "/scim/v2/Users/g%23EXT%23%40contoso", "get_user", {"id": "g#EXT#@contoso"}),
        ("POST", "/scim/v2/Users/.search", "search_users", {}),
        ("GET", "/scim/v2/Users/.search", "get_user", {"id": ".search"}),
        ("GET", "/items", "items", {}),
        ("GET", "/items/42", "items", {"id": "42"}),
        ("GET", "/files/a/b%20c.txt", "files", {"path": "a/b c.txt"}),
        ("GET", "/files", "files", {}),
    ],
    ids=[
        "param",
        "second-method",
        "literals-case-insensitive",
        "trailing-slash",
        "param-percent-decoded",
        "literal-beats-param",
        "param-when-literal-excludes-method",
        "optional-absent",
        "optional-present",
        "catch-all",
        "catch-all-empty",
    ],
)
def test_route_templates_match_like_the_functions_host(
    host: LocalHost, method: str, path: str, function: str, route_params: dict[str, str]
) -> None:
    """Templates match as in ASP.NET Core routing, the most specific template first."""
    seen = echo(requests.request(method, host.base_url + path, timeout=10))
    assert (seen["function"], seen["route_params"]) == (function, route_params)


@pytest.mark.parametrize(
    "path",
    ["/nope", "/scim/v2/Groups", "/scim/v2/Users/a/b", "/items/abc", "/api/plain"],
    ids=["unknown", "unknown-literal", "too-many-segments", "constraint-fails", "default-prefix"],
)
def test_a_path_no_route_matches_is_404(host: LocalHost, path: str) -> None:
    response = requests.get(host.base_url + path, timeout=10)
    assert (response.status_code, response.content) == (404, b"")


def test_a_method_the_route_does_not_declare_is_405_with_allow(host: LocalHost) -> None:
    response = requests.delete(f"{host.base_url}/scim/v2/Users", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "PATCH, POST, PUT"


def test_a_route_without_methods_takes_every_method(host: LocalHost) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        assert requests.request(method, f"{host.base_url}/plain", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("route_prefix", "path"),
    [(None, "/api/plain"), ("custom/v1", "/custom/v1/plain"), ("", "/plain")],
    ids=["default-api", "custom", "empty"],
)
def test_host_json_route_prefix_prefixes_every_route(
    tmp_path: Path, route_prefix: str | None, path: str
) -> None:
    app_dir = tmp_path if route_prefix is None else write_host_json(tmp_path, route_prefix)
    with LocalHost(SAMPLE, app_dir=app_dir) as running:
        assert requests.get(running.base_url + path, timeout=10).status_code == 200


# --- what the function receives ---------------------------------------------------------------


def test_the_request_reaches_the_function_whole(host: LocalHost) -> None:
    """Method, full URL, query parameters, headers and body arrive in the func.HttpRequest."""
    url = f"{host.base_url}/scim/v2/Users/.search?filter=userName%20eq%20%22a%22&x=1&x=2&empty="
    headers = {"X-Test": "yes", "Content-Type": "a/b"}
    seen = echo(requests.post(url, data=b'{"startIndex": 1}', headers=headers, timeout=10))
    assert seen["method"] == "POST"
    assert seen["url"] == url
    # Repeated query keys are joined with a comma, as the host does.
    assert seen["params"] == {"filter": 'userName eq "a"', "x": "1,2", "empty": ""}
    assert seen["headers"]["x-test"] == "yes"
    assert seen["headers"]["content-type"] == "a/b"
    assert seen["body"] == '{"startIndex": 1}'


def test_a_chunked_request_body_is_read_whole(host: LocalHost) -> None:
    chunks = iter([b'{"a":', b' "b"}'])
    seen = echo(requests.post(f"{host.base_url}/scim/v2/Users/.search", data=chunks, timeout=10))
    assert seen["body"] == '{"a": "b"}'


def test_a_context_parameter_gets_the_invocation_context(host: LocalHost) -> None:
    """As in the Python worker, a parameter named ``context`` receives a func.Context."""
    first = echo(requests.get(f"{host.base_url}/with-context", timeout=10))
    second = echo(requests.get(f"{host.base_url}/with-context", timeout=10))
    assert first["function_name"] == "with_context"
    assert uuid.UUID(first["invocation_id"]) != uuid.UUID(second["invocation_id"])


def test_async_functions_share_one_event_loop(host: LocalHost) -> None:
    """Like the worker's single loop, so loop-bound clients survive between invocations."""
    first = requests.get(f"{host.base_url}/async", timeout=10).text
    assert first.startswith("loop ")
    assert requests.get(f"{host.base_url}/async", timeout=10).text == first


# --- what the client receives -------------------------------------------------------------


def test_status_headers_and_body_come_from_the_http_response(host: LocalHost) -> None:
    body = b'{"userName": "a"}'
    response = requests.post(f"{host.base_url}/scim/v2/Users", data=body, timeout=10)
    assert response.status_code == 201
    assert response.headers["Location"] == "/scim/v2/Users/1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Content-Type"] == "application/scim+json"
    assert response.content == body


def test_a_text_mimetype_gets_the_charset_as_in_the_worker(host: LocalHost) -> None:
    response = requests.get(f"{host.base_url}/plain", timeout=10)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Multi"] == "a"
    assert response.content == "héllo".encode()


def test_a_204_has_no_body(host: LocalHost) -> None:
    response = requests.delete(f"{host.base_url}/empty", timeout=10)
    assert (response.status_code, response.content) == (204, b"")


def test_an_unhandled_exception_is_a_bare_500_and_is_logged(
    host: LocalHost, caplog: pytest.LogCaptureFixture
) -> None:
    """The client never sees internals; the log keeps the traceback with the invocation id."""
    with caplog.at_level(logging.INFO, logger="devhost"):
        response = requests.get(f"{host.base_url}/boom", timeout=10)
    assert (response.status_code, response.content) == (500, b"")
    assert "secret" not in str(response.headers)
    failed = [r for r in caplog.records if "Executed 'Functions.boom' (Failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].exc_info is not None
    assert "secret internal detail" in str(failed[0].exc_info[1])


def test_a_function_returning_no_response_is_a_500(host: LocalHost) -> None:
    response = requests.get(f"{host.base_url}/no-response", timeout=10)
    assert (response.status_code, response.content) == (500, b"")


# --- timers -------------------------------------------------------------------------------


def test_fire_timer_runs_the_timer_function_now(host: LocalHost) -> None:
    host.fire_timer("graph_sync")
    assert len(sample_app.TIMER_CALLS) == 1
    timer = sample_app.TIMER_CALLS[0]
    assert isinstance(timer, func.TimerRequest)
    assert timer.past_due is False


def test_fire_timer_raises_what_the_timer_raises(host: LocalHost) -> None:
    with pytest.raises(RuntimeError, match="timer failed"):
        host.fire_timer("failing_timer")


@pytest.mark.parametrize("name", ["nope", "get_user"], ids=["unknown", "http-function"])
def test_fire_timer_refuses_what_is_not_a_timer(host: LocalHost, name: str) -> None:
    with pytest.raises(DevHostError, match="graph_sync"):
        host.fire_timer(name)


@pytest.mark.parametrize(
    ("name", "status", "calls"),
    [("graph_sync", 202, 1), ("GRAPH_SYNC", 202, 1), ("failing_timer", 500, 0), ("nope", 404, 0)],
    ids=["runs", "name-case-insensitive", "fails", "unknown"],
)
def test_the_admin_endpoint_runs_a_timer(
    host: LocalHost, name: str, status: int, calls: int
) -> None:
    """Core Tools' ``POST /admin/functions/<name>``, which ``make sync`` uses on a running host,
    with the host's key in ``x-functions-key`` as Azure requires the master key."""
    url = f"{host.base_url}/admin/functions/{name}"
    headers = {"x-functions-key": host.admin_key}
    response = requests.post(url, json={"input": ""}, headers=headers, timeout=10)
    assert response.status_code == status
    assert len(sample_app.TIMER_CALLS) == calls


def _scim_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status)
    detail: str = body["detail"]
    return detail


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b'{"input": ""}'),
        ({"x-functions-key": ""}, b'{"input": ""}'),
        ({"x-functions-key": "wrong"}, b'{"input": ""}'),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"input="),
        ({"Content-Type": "text/plain"}, b'{"input": ""}'),
    ],
    ids=["no-key", "empty-key", "wrong-key", "html-form-post", "text-plain-post"],
)
def test_the_admin_endpoint_refuses_a_call_without_the_key(
    host: LocalHost, headers: dict[str, str], body: bytes
) -> None:
    """A page in the developer's browser can POST cross-site to 127.0.0.1 (a form, or fetch with
    a simple content type) but cannot add ``x-functions-key`` without a CORS preflight, which the
    host never grants: without the per-run key the timer does not run (issue 11, item 17)."""
    sent = {"Content-Type": "application/json", **headers}
    url = f"{host.base_url}/admin/functions/graph_sync"
    response = requests.post(url, data=body, headers=sent, timeout=10)
    assert "x-functions-key" in _scim_error(response, 401)
    assert sample_app.TIMER_CALLS == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", ""], ids=str
)
def test_the_admin_endpoint_needs_a_json_body_even_with_the_key(
    host: LocalHost, content_type: str
) -> None:
    """Azure's admin API takes ``Content-Type: application/json``; a simple-request content type
    is refused, so even a leaked key is not usable from a cross-site form."""
    headers = {"x-functions-key": host.admin_key, "Content-Type": content_type}
    url = f"{host.base_url}/admin/functions/graph_sync"
    response = requests.post(url, data=b'{"input": ""}', headers=headers, timeout=10)
    _scim_error(response, 415)
    assert sample_app.TIMER_CALLS == []


def test_each_host_has_its_own_admin_key(tmp_path: Path) -> None:
    with LocalHost(SAMPLE, app_dir=tmp_path) as first:
        key = first.admin_key
    with LocalHost(SAMPLE, app_dir=tmp_path) as second:
        assert len(second.admin_key) >= 40
        assert second.admin_key != key
        url = f"{second.base_url}/admin/functions/graph_sync"
        stale = requests.post(url, json={}, headers={"x-functions-key": key}, timeout=10)
        assert stale.status_code == 401


# --- loading ------------------------------------------------------------------------------


def test_get_functions_is_called_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker indexes the app once; a FunctionApp raises on a second ``get_functions()``."""
    calls: list[object] = []
    original = func.FunctionApp.get_functions

    def counting(self: func.FunctionApp) -> Any:
        calls.append(self)
        return original(self)

    monkeypatch.setattr(func.FunctionApp, "get_functions", counting)
    with LocalHost(SAMPLE, app_dir=write_host_json(tmp_path, "")) as running:
        requests.get(f"{running.base_url}/plain", timeout=10)
        requests.get(f"{running.base_url}/scim/v2/Users/1", timeout=10)
        running.fire_timer("graph_sync")
    assert calls == [sample_app.app]


def test_env_is_set_while_the_host_runs_and_restored_after(tmp_path: Path) -> None:
    name = "DEVHOST_TEST_SETTING"
    assert name not in os.environ
    with LocalHost(SAMPLE, app_dir=tmp_path, env={name: "on"}):
        assert os.environ[name] == "on"
    assert name not in os.environ


def _app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    name = f"devhost_case_{uuid.uuid4().hex}"
    source = "import azure.functions as func\napp = func.FunctionApp()\n" + textwrap.dedent(body)
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            """
            @app.route(route="x")
            def x(req: func.HttpRequest, extra: str) -> func.HttpResponse: ...
            """,
            "do not match its trigger binding",
        ),
        (
            """
            @app.route(route="x/{a}.{b}")
            def x(req: func.HttpRequest) -> func.HttpResponse: ...
            """,
            "unsupported route segment",
        ),
        (
            """
            @app.route(route="x")
            @app.blob_input(arg_name="blob", path="c/b", connection="AzureWebJobsStorage")
            def x(req: func.HttpRequest, blob: func.InputStream) -> func.HttpResponse: ...
            """,
            "no \\['blob'\\] bindings",
        ),
    ],
    ids=["undeclared-parameter", "complex-segment", "other-binding"],
)
def test_an_app_the_host_would_not_load_fails_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    """The worker refuses these apps too; serving them differently would hide the problem."""
    host = LocalHost(_app_module(tmp_path, monkeypatch, body))
    with pytest.raises(DevHostError, match=message):
        host.start()


# --- the command line -----------------------------------------------------------------------


def _start_cli(state: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "devhost", "--module", SAMPLE, "--port", "0"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(state)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("Listening on "):
        process.kill()
        pytest.fail(f"devhost did not start: {line!r} {process.communicate()}")
    return process, line.removeprefix("Listening on ").strip()


def test_the_cli_serves_fires_timers_on_the_running_host_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    mark = tmp_path / "timer-ran"
    token = "cli-test-token-" + uuid.uuid4().hex
    env = {
        **os.environ,
        "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",  # no Azurite needed here
        "SCIM_BEARER_TOKEN": token,
        "SAMPLE_TIMER_MARK": str(mark),
    }
    process, base_url = _start_cli(tmp_path, env)
    try:
        # tests/devhost has no host.json, so the host's default prefix applies.
        assert requests.get(f"{base_url}/api/plain", timeout=10).text == "héllo"
        fire = subprocess.run(
            [
                sys.executable,
                "-m",
                "devhost",
                "--state-dir",
                str(tmp_path),
                "--fire-timer",
                "graph_sync",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fire.returncode == 0, fire.stderr
        assert mark.read_text(encoding="utf-8") == "past_due=False"
        # The per-run admin key --fire-timer sent: owner-only, and required.
        key_file = tmp_path / "devhost.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        keyless = requests.post(f"{base_url}/admin/functions/graph_sync", json={}, timeout=10)
        assert keyless.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert not (tmp_path / "devhost.url").exists()
    assert not (tmp_path / "devhost.key").exists()
    assert token not in out + err  # a token the operator set is never echoed


@pytest.mark.parametrize(
    ("timer", "returncode"),
    [("graph_sync", 0), ("failing_timer", 1), ("nope", 2)],
    ids=["runs", "fails", "unknown"],
)
def test_the_cli_fires_a_timer_in_process_without_a_running_host(
    tmp_path: Path, timer: str, returncode: int
) -> None:
    mark = tmp_path / "timer-ran"
    env = {**os.environ, "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    env.update({"SCIM_BEARER_TOKEN": "t", "SAMPLE_TIMER_MARK": str(mark)})
    command = [sys.executable, "-m", "devhost", "--module", SAMPLE, "--state-dir", str(tmp_path)]
    done = subprocess.run(
        [*command, "--fire-timer", timer],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == returncode, done.stderr
    assert mark.exists() == (returncode == 0)


def test_a_generated_token_is_kept_owner_only_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCIM_BEARER_TOKEN", raising=False)
    token, chosen = _bearer_token(tmp_path)
    assert chosen
    assert len(token) >= 40
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert _bearer_token(tmp_path) == (token, True)
    monkeypatch.setenv("SCIM_BEARER_TOKEN", "from-env")
    assert _bearer_token(tmp_path) == ("from-env", False)
