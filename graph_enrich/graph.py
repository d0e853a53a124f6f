"""Microsoft Graph through msgraph-sdk: the delta pages, single users and subscriptions the sync
needs, with Graph's errors translated into :mod:`graph_enrich.errors` here and nowhere else.

Requests are built by the SDK's request builders and sent by its request adapter (the
azure-identity auth provider, Graph's middleware, httpx) at GRAPH_BASE_URL. Two departures from
the SDK's defaults, both on purpose:

- Answers are read raw (kiota's ``NativeResponseHandler``) instead of as generated models, so a
  delta page's annotations (``@removed``, ``manager@delta``) and whatever properties
  GRAPH_SELECT names reach the sync exactly as Graph sent them.
- The SDK's RetryHandler is off: it honours any Retry-After up to 180 s, past the Functions
  timeout. Retries happen here instead, honouring Retry-After (Microsoft Learn, "Microsoft Graph
  throttling guidance": "wait the number of seconds specified in the Retry-After header") only
  while the run's budget allows; otherwise the run stops and resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from graph_enrich.budget import Budget
from graph_enrich.config import SyncConfig
from graph_enrich.errors import (
    CredentialError,
    Forbidden,
    GraphError,
    ResyncRequired,
    SyncError,
    Throttled,
)
from graph_enrich.guests import guest_upn_prefix, odata_string

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials import TokenCredential
    from kiota_abstractions.request_information import RequestInformation

log = logging.getLogger("graph_enrich")

#: Attempts per request for throttling and transient server errors.
MAX_ATTEMPTS = 4
#: Seconds one request may take; a run starts no request it could not wait this long for.
REQUEST_TIMEOUT = 30.0
_TRANSIENT = frozenset({429, 500, 502, 503, 504})
#: Microsoft Learn, "Use delta query ...", "Synchronization reset" (410 Gone) and "Token
#: duration" ("a 40X-series error with error codes such as syncStateNotFound").
_RESYNC_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
#: The SDK modules a run uses. Their generated classes emit DeprecationWarnings about the
#: SDK's own internals when they are defined (kiota-abstractions 1.16, msgraph-sdk 1.65):
#: imported once, warnings absorbed, instead of on first use in the middle of a run.
_SDK_MODULES = tuple(
    f"msgraph.generated.{m}"
    for m in (
        "users.users_request_builder",
        "users.delta.delta_request_builder",
        "users.item.user_item_request_builder",
        "directory.directory_request_builder",
        "directory.deleted_items.deleted_items_request_builder",
        "directory.deleted_items.item.directory_object_item_request_builder",
        "subscriptions.subscriptions_request_builder",
        "subscriptions.item.subscription_item_request_builder",
        "models.subscription",
    )
)
_sdk_loaded = threading.Lock()


def load_sdk() -> None:
    """Import msgraph-sdk's modules (about a second, once per process)."""
    with _sdk_loaded, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, module=r"(msgraph|kiota_abstractions)\."
        )
        for name in ("kiota_abstractions.default_query_parameters", *_SDK_MODULES):
            importlib.import_module(name)


@dataclass(frozen=True)
class DeltaPage:
    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


class GraphClient:
    """One run's Graph connection; ``async with`` closes its HTTP client."""

    def __init__(
        self,
        config: SyncConfig,
        credential: TokenCredential,
        budget: Budget,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        load_sdk()
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as sdk_options
        from msgraph.graph_service_client import GraphServiceClient
        from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]  # no py.typed

        # httpx logs every request at INFO, tokens and all: hundreds of lines per run.
        if logging.getLogger("httpx").level == logging.NOTSET:
            logging.getLogger("httpx").setLevel(logging.WARNING)
        self.config = config
        self.budget = budget
        self.sleep = sleep
        self.waits = 0  # Retry-After waits honoured: reported in the run's summary
        host = urlsplit(config.base_url).hostname or ""
        # Tokens go to the configured Graph host only, never to a host a response names.
        auth = AzureIdentityAuthenticationProvider(credential, allowed_hosts=[host])
        options = {
            **sdk_options,
            RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False),
        }
        # msgraph-core's AsyncGraphTransport (1.5) does not close the transport it wraps, so
        # the connection pool is kept here and closed by __aexit__ (else sockets leak).
        self._transport = httpx.AsyncHTTPTransport(http2=True)
        self._http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(
                transport=self._transport, timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=10.0)
            ),
            options=options,
        )
        self._adapter = GraphRequestAdapter(auth, self._http)
        self._adapter.base_url = config.base_url
        self.sdk = GraphServiceClient(request_adapter=self._adapter)

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        await self._transport.aclose()

    # --- users ------------------------------------------------------------------------------------
    async def delta_page(self, link: str | None) -> DeltaPage:
        """One page of ``/users/delta``: the initial request when ``link`` is None, otherwise
        the nextLink or deltaLink of an earlier answer (they carry the $select)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

        if link is None:
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=self.config.select
            )
            info = self.sdk.users.delta.to_get_request_information(
                RequestConfiguration(query_parameters=query)
            )
        else:
            self.check_link(link)
            info = self.sdk.users.delta.with_url(link).to_get_request_information()
        body = await self._json(info)
        items, next_link = body.get("value"), body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
        if not isinstance(items, list) or not (next_link or delta_link):
            raise GraphError(
                200,
                "malformedDeltaPage",
                "the answer has no value list or neither nextLink nor deltaLink",
            )
        return DeltaPage([i for i in items if isinstance(i, dict)], next_link, delta_link)

    def check_link(self, link: str) -> None:
        """A stored or received link must point at the configured Graph root (it changes when
        GRAPH_BASE_URL does: then the sync starts a new full round)."""
        if not link.startswith(self.config.base_url + "/"):
            raise ResyncRequired(0, "foreignLink", f"{link[:80]!r} is not below GRAPH_BASE_URL")

    async def get_user(self, key: str) -> dict[str, Any] | None:
        """``GET /users/{id | userPrincipalName}`` with the configured properties; None on 404.
        On a single user the manager is an ``$expand`` (unlike delta)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import (
            UserItemRequestBuilder,
        )

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", *self.config.properties],
            expand=["manager($select=id)"] if self.config.tracks_manager else None,
        )
        info = self.sdk.users.by_user_id(key).to_get_request_information(
            RequestConfiguration(query_parameters=query)
        )
        return await self._json_or_none(info)

    async def find_guest(self, user_name: str) -> dict[str, Any] | None:
        """The B2B guest Entra provisioned as ``user_name`` (``alias@theirdomain``), found by its
        UPN prefix ``alias_theirdomain#EXT#@`` (graph_enrich/guests.py); None unless exactly one
        user has it. Same properties and manager expansion as :meth:`get_user`."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        prefix = guest_upn_prefix(user_name)
        if prefix is None:
            return None
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"startswith(userPrincipalName,{odata_string(prefix)})",
            select=["id", *self.config.properties],
            expand=["manager($select=id)"] if self.config.tracks_manager else None,
        )
        info = self.sdk.users.to_get_request_information(
            RequestConfiguration(query_parameters=query)
        )
        found = (await self._json(info)).get("value")
        users = [u for u in found if isinstance(u, dict)] if isinstance(found, list) else []
        return users[0] if len(users) == 1 else None

    async def removed_reason(self, object_id: str) -> str:
        """Why a user is gone, in delta's words: ``changed`` when it is in the directory's
        deleted items (restorable for 30 days), ``deleted`` when it is gone for good."""
        builder = self.sdk.directory.deleted_items.by_directory_object_id(object_id)
        found = await self._json_or_none(builder.to_get_request_information())
        return "changed" if found is not None else "deleted"

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST {GRAPH_BASE_URL}{path}`` with a JSON body; the JSON answer. Used for
        ``/$batch`` (graph_enrich/batch.py), which is sent as the documented JSON rather than
        through the SDK's BatchRequestContent: that one drops sub-response bodies (and so
        Graph's error code), sends ``depends_on`` and can make item URLs absolute
        (/work/shared/GRAPH.md)."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        info = RequestInformation(Method.POST)
        info.url = f"{self.config.base_url}{path}"
        info.headers.try_add("Content-Type", "application/json")
        info.headers.try_add("Accept", "application/json")
        info.content = json.dumps(body).encode()
        return await self._json(info)

    # --- subscriptions ----------------------------------------------------------------------------
    async def create_subscription(
        self, url: str, client_state: str, expires: datetime
    ) -> dict[str, Any]:
        from msgraph.generated.models.subscription import Subscription

        # Users support "updated" and "deleted"; lifecycle events (reauthorizationRequired,
        # subscriptionRemoved, missed) go to the same endpoint.
        body = Subscription(
            change_type="updated,deleted",
            notification_url=url,
            lifecycle_notification_url=url,
            resource="users",
            expiration_date_time=expires,
            client_state=client_state,
        )
        return await self._json(self.sdk.subscriptions.to_post_request_information(body))

    async def renew_subscription(self, sub_id: str, expires: datetime) -> dict[str, Any] | None:
        from msgraph.generated.models.subscription import Subscription

        info = self.sdk.subscriptions.by_subscription_id(sub_id).to_patch_request_information(
            Subscription(expiration_date_time=expires)
        )
        return await self._json_or_none(info)

    async def delete_subscription(self, sub_id: str) -> None:
        info = self.sdk.subscriptions.by_subscription_id(sub_id).to_delete_request_information()
        await self._send(info, missing_ok=True)

    # --- transport --------------------------------------------------------------------------------
    async def _json(self, info: RequestInformation) -> dict[str, Any]:
        """The answer's JSON object; a 404 is an error like any other."""
        found = await self._json_or_none(info, missing_ok=False)
        if found is None:
            raise GraphError(404, "notFound", "not found")
        return found

    async def _json_or_none(
        self, info: RequestInformation, *, missing_ok: bool = True
    ) -> dict[str, Any] | None:
        """The answer's JSON object, or None on 404 (when ``missing_ok``)."""
        response = await self._send(info, missing_ok=missing_ok)
        if response is None:
            return None
        try:
            body = json.loads(response.content) if response.content else {}
        except ValueError as exc:
            raise GraphError(
                response.status_code, "malformedResponse", "the answer is not JSON"
            ) from exc
        if not isinstance(body, dict):
            raise GraphError(response.status_code, "malformedResponse", "not a JSON object")
        return body

    async def _send(
        self, info: RequestInformation, *, missing_ok: bool = False
    ) -> httpx.Response | None:
        import httpx
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_http.middleware.options import ResponseHandlerOption

        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        for attempt in range(1, MAX_ATTEMPTS + 1):
            error: SyncError
            try:
                response: httpx.Response = await self._adapter.send_primitive_async(
                    info, "bytes", None
                )
            # ServiceRequestError: the token source itself is unreachable (the managed identity
            # endpoint, or the sign-in authority); the Graph requests go through httpx.
            except (ClientAuthenticationError, ServiceRequestError) as exc:
                raise CredentialError(
                    f"no Graph token ({_first_line(exc)}); in Azure set AZURE_CLIENT_ID to the "
                    "managed identity, elsewhere GRAPH_TENANT_ID/GRAPH_CLIENT_ID/"
                    "GRAPH_CLIENT_SECRET, or sign in with `az login`"
                ) from exc
            except httpx.TransportError as exc:
                error = Throttled(0, type(exc).__name__, str(exc) or "connection failed")
            else:
                if response.status_code < 300:
                    return response
                if response.status_code == 404 and missing_ok:
                    return None
                error = _translate(response)
            if not isinstance(error, Throttled) or attempt == MAX_ATTEMPTS:
                raise error
            wait = error.retry_after if error.retry_after is not None else float(2**attempt)
            if not self.budget.allows(wait + REQUEST_TIMEOUT):
                raise error  # the checkpoint holds; the next run resumes there
            log.warning(
                "Graph answered %s %s; retrying in %.0f s (attempt %d of %d)",
                error.status or "",
                error.code,
                wait,
                attempt + 1,
                MAX_ATTEMPTS,
            )
            self.waits += 1
            await self.sleep(wait)
        raise AssertionError("unreachable")


def _translate(response: httpx.Response) -> SyncError:
    """Graph's error body (``{"error": {"code", "message", "innerError": {"request-id"}}}``) as
    one of our errors."""
    try:
        error = json.loads(response.content).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    status = response.status_code
    code = str(error.get("code") or response.reason_phrase or status)
    message = str(error.get("message") or "")
    inner = error.get("innerError") if isinstance(error.get("innerError"), dict) else {}
    request_id = response.headers.get("request-id") or (inner or {}).get("request-id")
    if status == 410 or code.lower() in _RESYNC_CODES:
        return ResyncRequired(status, code, message, request_id)
    if status == 401:
        return CredentialError(f"Graph rejected the token: {code}: {message}")
    if status == 403:
        return Forbidden(
            status,
            code,
            message + " The identity needs the Microsoft Graph "
            "application permission User.Read.All (infra/graph-permissions.bicep).",
            request_id,
        )
    if status in _TRANSIENT:
        return Throttled(status, code, message, request_id, _retry_after(response))
    return GraphError(status, code, message, request_id)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date, RFC 9110 §10.2.3)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
