"""The route table above the service: authenticates every request, checks the caller's scopes
(:mod:`scim_core.access`), then hands ``/Bulk`` to :mod:`scim_core.bulk` and everything else to
:class:`~scim_core.service.ScimService`.

Bulk depends on the service (it runs each operation through ``dispatch``), never the other way
round; it is imported on the first Bulk request only, so a cold start (Entra's Test Connection
is a GET) does not pay for pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_core.access import authorize
from scim_core.auth import Authenticator
from scim_core.errors import NotImplemented_, ScimError
from scim_core.http import ScimRequest, ScimResponse, allow, error_response
from scim_core.service import ScimService

if TYPE_CHECKING:
    from scim_core.events.poll import EventsEndpoint


class Router:
    """``handle`` answers any request below the SCIM base with a :class:`ScimResponse`."""

    def __init__(
        self,
        service: ScimService,
        authenticator: Authenticator | None,
        events: EventsEndpoint | None = None,
    ) -> None:
        self.service = service
        self.auth = authenticator
        #: ``/Events`` (RFC 8936 poll); None: events are off (501).
        self.events = events

    def handle(self, req: ScimRequest) -> ScimResponse:
        try:
            if self.auth is not None:
                principal = self.auth.authenticate(req.headers.get("authorization"))
                req = authorize(principal, req)
            return self.route(req)
        except ScimError as err:
            return error_response(err)

    def route(self, req: ScimRequest) -> ScimResponse:
        parts = [p for p in req.path.split("/") if p]
        if len(parts) == 1 and parts[0].lower() == "bulk":
            from scim_core.bulk import run_bulk

            allow(req, "POST")
            return run_bulk(self.service, req)
        if parts and parts[0].lower() == "events":
            if self.events is None:
                raise NotImplemented_(
                    "events are off on this instance: the operator sets SCIM_EVENTS to notice "
                    "or full (docs/events.md)"
                )
            return self.events.handle(req)
        return self.service.dispatch(req)
