"""TEMPORARY: issue 13's outbox types as described, until main has scim_core/outbox.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from scim_core.store import Outbox


@dataclass(frozen=True)
class ChangeRecord:
    rtype: str
    id: str
    kind: Literal["create", "put", "patch", "delete"]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    origin: Literal["provisioning", "app", "enrichment"]


Producer = Callable[[ChangeRecord], list[Outbox]]
