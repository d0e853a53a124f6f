"""SCIM 2.0 protocol core and storage for the Azure Functions app.

Public surface: the service (one method per SCIM route), its plain request/response objects,
the Store seam with its two implementations, the settings, and the error hierarchy. Importing
the package does not import Azure SDKs: ``scim_core.store.table`` loads them when a store is built.
"""

from scim_core.errors import ScimError
from scim_core.http import ScimRequest, ScimResponse
from scim_core.router import Router
from scim_core.service import ScimService
from scim_core.settings import Settings
from scim_core.store import Member, MemberChange, Store, Stored


def __getattr__(name: str) -> object:
    # MemoryStore (tests, benchmarks) is not needed to serve: import it on first use only.
    if name == "MemoryStore":
        from scim_core.store.memory import MemoryStore

        return MemoryStore
    raise AttributeError(f"module 'scim_core' has no attribute {name!r}")


__all__ = [
    "Member",
    "MemberChange",
    "MemoryStore",
    "ScimError",
    "ScimRequest",
    "ScimResponse",
    "Router",
    "ScimService",
    "Settings",
    "Store",
    "Stored",
]
