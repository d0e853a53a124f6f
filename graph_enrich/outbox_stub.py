"""TEMPORARY: issue 13's outbox types as described, until main has scim_core/outbox.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Outbox:
    queue: str
    key: str | None
    body: dict[str, Any]
    replace: bool = False


@dataclass(frozen=True)
class OutboxEntry:
    key: str
    body: dict[str, Any] = field(default_factory=dict)
    etag: str = ""


@dataclass(frozen=True)
class ChangeRecord:
    rtype: str
    id: str
    kind: Literal["create", "put", "patch", "delete"]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    origin: Literal["provisioning", "app", "enrichment"]


Producer = Callable[[ChangeRecord], list[Outbox]]
