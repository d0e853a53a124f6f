"""Azure Functions entry point (Python v2 programming model).

Decorated functions only: each adapts ``func.HttpRequest`` to a plain
:class:`scim_core.ScimRequest`, hands it to the SCIM service and renders the response. No SCIM
logic lives here. Routes sit below ``/scim/v2`` (host.json sets ``routePrefix`` to ""), so the
Entra Tenant URL is ``https://<app>/scim/v2``. Functions auth level is anonymous: the service
authenticates every request itself (bearer token or JWT).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

import azure.functions as func

from scim_core.activity import Activity
from scim_core.http import ScimRequest, ScimResponse
from scim_core.router import Router
from scim_core.settings import Settings
from scim_core.store import Store

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("scim")

BASE = "scim/v2"
#: Every route takes every method, so a wrong method gets a SCIM 405 from the service rather
#: than the Functions host's bare 404/405.
ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_router: Router | None = None
_activity: Activity | None = None


def router() -> Router:
    """The process-wide request handler, built on first use from the app settings."""
    global _router
    if _router is None:
        from graph_enrich.writeback_queue import outbox_producers
        from scim_core.wiring import build_router

        settings = Settings.from_env(os.environ)
        # graph_enrich's outbox queues (write-back, new users), in each change's transaction.
        _router = build_router(settings, outbox_producers(settings))
    return _router


def store() -> Store:
    """The process-wide store (the timer and webhook functions share the router's)."""
    return router().service.store


def activity() -> Activity:
    """The process's request counters for ``GET /status`` (scim_core/activity.py)."""
    global _activity
    if _activity is None:
        _activity = Activity(store())
    return _activity


def to_scim_request(req: func.HttpRequest) -> ScimRequest:
    url = req.url.split("?", 1)[0]
    marker = "/" + BASE
    at = url.lower().find(marker)
    base_url, path = (url[: at + len(marker)], url[at + len(marker) :]) if at >= 0 else (url, "/")
    return ScimRequest(
        method=req.method.upper(),
        path=path or "/",
        base_url=base_url,
        query=dict(req.params),
        headers={k.lower(): v for k, v in req.headers.items()},
        body=req.get_body() or b"",
    )


def serve(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The one error translator: SCIM errors are rendered by the service; anything else is a
    bug, logged with the invocation id and answered with a generic 500 without internals."""
    try:
        resp = router().handle(to_scim_request(req))
    except Exception:
        log.exception("unhandled error in invocation %s", context.invocation_id)
        resp = ScimResponse(
            500,
            b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],'
            b'"status":"500","detail":"internal error; see the app log for '
            b"invocation " + context.invocation_id.encode() + b'"}',
            {"Content-Type": "application/scim+json"},
        )
    try:
        activity().record(resp.status)
    except Exception:  # counting must never fail a SCIM answer (e.g. no store configured)
        log.debug("request not counted", exc_info=True)
    return func.HttpResponse(body=resp.body, status_code=resp.status, headers=resp.headers)


@app.route(route="status", methods=ALL)
def status(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """The instance's health for its operator (scim_core/status.py), same credentials as SCIM."""
    from graph_enrich.health import sync_health
    from scim_core.status import status_response

    def sections(now: datetime) -> dict[str, object]:
        graph = sync_health(store(), now)
        return {"users": graph.pop("users"), "graphSync": graph}

    try:
        resp = status_response(to_scim_request(req), router().auth, activity(), sections)
    except Exception:
        log.exception("unhandled error in invocation %s", context.invocation_id)
        resp = ScimResponse(500, b'{"detail":"internal error; see the app log"}', {})
    return func.HttpResponse(body=resp.body, status_code=resp.status, headers=resp.headers)


@app.route(route=f"{BASE}/Users", methods=ALL)
def users(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Users/.search", methods=ALL)
def users_search(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Users/{{id}}", methods=ALL)
def user(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Groups", methods=ALL)
def groups(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Groups/.search", methods=ALL)
def groups_search(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Groups/{{id}}", methods=ALL)
def group(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/.search", methods=ALL)
def search(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Bulk", methods=ALL)
def bulk(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/ServiceProviderConfig", methods=ALL)
def service_provider_config(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Schemas", methods=ALL)
def schemas(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Schemas/{{id}}", methods=ALL)
def schema(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/ResourceTypes", methods=ALL)
def resource_types(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/ResourceTypes/{{id}}", methods=ALL)
def resource_type(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/Me", methods=ALL)
def me(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return serve(req, context)


@app.route(route=f"{BASE}/{{*rest}}", methods=ALL)
def not_found(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Any other path below the base: a SCIM 404 rather than the host's bare one."""
    return serve(req, context)


# --- Microsoft Graph enrichment (graph_enrich) ------------------------------------------------


@app.timer_trigger(
    schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def graph_sync(timer: func.TimerRequest) -> None:
    """Graph delta sync + enrichment on SYNC_SCHEDULE (NCRONTAB, UTC). Trouble with Graph or
    credentials is logged and recorded in the state table, never raised: SCIM is unaffected."""
    from graph_enrich import run_sync

    run_sync(Settings.from_env(os.environ), store())


@app.timer_trigger(
    schedule="%TOKEN_AGE_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def token_age(timer: func.TimerRequest) -> None:
    """Logs each static token's age in days, once a day (TOKEN_AGE_SCHEDULE, UTC), for the
    "token not rotated" alert in infra/modules/alerts.bicep (scim_core/token_age.py)."""
    from scim_core.token_age import record_token_ages

    record_token_ages(store(), Settings.from_env(os.environ))


# --- provisioning events (scim_core/events, docs/events.md) -------------------------------------


@app.timer_trigger(
    schedule="%SCIM_EVENTS_PUSH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def events_push(timer: func.TimerRequest) -> None:
    """RFC 8935 push of the pending SETs to SCIM_EVENTS_PUSH_URL (scim_core/events/push.py): a
    bounded run; a failing receiver is backed off and recorded, never raised. Nothing when
    events are off or no push URL is set."""
    from scim_core.events.push import build_pusher

    events = router().events
    if events is None:
        return
    if events.encoder is None:
        logging.warning("event push waits: SCIM_EVENTS_SIGNING_KEY is not resolved yet")
        return
    pusher = build_pusher(events.feed, events.encoder, Settings.from_env(os.environ))
    if pusher is not None:
        pusher.run()


@app.timer_trigger(
    schedule="%SCIM_EVENTS_RETENTION_SCHEDULE%",
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
def events_retention(timer: func.TimerRequest) -> None:
    """Removes the events older than SCIM_EVENTS_RETENTION_DAYS (scim_core/events/retention.py)
    when events are on: reads expired event rows only, never a resource."""
    from scim_core.events.retention import purge_expired, retention_days

    events = router().events
    if events is None:
        return
    days = retention_days(Settings.from_env(os.environ).events_retention_days)
    purge_expired(events.feed, days)


@app.route(route="graph/notifications", methods=["POST"])
def graph_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Graph change notifications: the validation handshake, else 202 within Graph's 3 s."""
    from graph_enrich import WebhookRequest, receive

    reply = receive(
        WebhookRequest(dict(req.params), req.get_body() or b""),
        Settings.from_env(os.environ),
        store(),
    )
    return func.HttpResponse(
        reply.body,
        status_code=reply.status,
        headers={"Content-Type": reply.content_type, **reply.headers},
    )
