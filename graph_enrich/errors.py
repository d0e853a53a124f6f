"""The errors of the Graph sync, translated at one boundary each (``graph.py`` for HTTP and
credentials, ``config.py`` for settings). A run stops on any of them, records it in the sync
status and logs one clear line; none of them reaches the SCIM endpoint.

    SyncError
    ├── ConfigurationError      the app settings do not describe a usable sync
    ├── CredentialError         no credential could get a token for Graph
    ├── LeaseLost               another run took over the delta cursor (overlapping runs)
    └── GraphError              an error answer from Graph (status, code, request id)
        ├── Forbidden (403)     the identity lacks the User.Read.All application permission
        ├── Throttled           429 / 503 / 504 / 5xx whose Retry-After does not fit the budget
        └── ResyncRequired      410 Gone or syncStateNotFound/resyncRequired: start a full round
"""

from __future__ import annotations


class SyncError(Exception):
    """Base class. ``kind`` names the failure in the status record and the log line."""

    kind = "error"


class ConfigurationError(SyncError):
    kind = "configuration"


class CredentialError(SyncError):
    kind = "credentials"


class LeaseLost(SyncError):
    """The cursor changed under us: another run owns it now, so this one must not advance it."""

    kind = "lease-lost"


class GraphError(SyncError):
    kind = "graph"

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(
            f"Graph answered {status} {code}: {message}"
            + (f" (request-id {request_id})" if request_id else "")
        )
        self.status = status
        self.code = code
        self.request_id = request_id


class Forbidden(GraphError):
    kind = "forbidden"


class Throttled(GraphError):
    kind = "throttled"

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(status, code, message, request_id)
        self.retry_after = retry_after


class ResyncRequired(GraphError):
    kind = "resync"
