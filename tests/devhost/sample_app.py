"""A tiny Function App for the local host's tests: each function shows back what it received."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

#: Every TimerRequest ``graph_sync`` received in this process.
TIMER_CALLS: list[func.TimerRequest] = []
#: ``slow`` sets the first when it starts and answers once a test sets the second.
SLOW_STARTED = threading.Event()
SLOW_RELEASE = threading.Event()


def _echo(req: func.HttpRequest, **extra: object) -> func.HttpResponse:
    seen = {
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "headers": dict(req.headers),
        "body": req.get_body().decode(),
        **extra,
    }
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@app.route(route="scim/v2/Users/{id}", methods=["GET", "DELETE"])
def get_user(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, function="get_user")


@app.route(route="scim/v2/Users/.search", methods=["POST"])
def search_users(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, function="search_users")


@app.route(route="scim/v2/Users", methods=["POST", "PUT", "PATCH"])
def create_user(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        req.get_body(),
        status_code=201,
        headers={"Location": "/scim/v2/Users/1", "ETag": 'W/"1"'},
        mimetype="application/scim+json",
    )


@app.route(route="items/{id:int?}")
def items(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, function="items")


@app.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _echo(req, function="files")


@app.route(route="plain")
def plain(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("héllo", headers={"X-Multi": "a"})


@app.route(route="empty", methods=["DELETE"])
def empty(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="with-context")
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _echo(req, invocation_id=context.invocation_id, function_name=context.function_name)


@app.route(route="async")
async def async_route(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(f"loop {id(asyncio.get_running_loop())}")


@app.route(route="slow")
def slow(req: func.HttpRequest) -> func.HttpResponse:
    SLOW_STARTED.set()
    released = SLOW_RELEASE.wait(timeout=30)
    return func.HttpResponse(f"released={released}")


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.route(route="no-response")
def no_response(req: func.HttpRequest) -> None:
    return None


@app.timer_trigger(schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
def graph_sync(timer: func.TimerRequest) -> None:
    TIMER_CALLS.append(timer)
    # Lets a test that runs the host in another process see that the timer ran.
    mark = os.environ.get("SAMPLE_TIMER_MARK")
    if mark:
        Path(mark).write_text(f"past_due={timer.past_due}", encoding="utf-8")


@app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
def failing_timer(timer: func.TimerRequest) -> None:
    raise RuntimeError("timer failed")
