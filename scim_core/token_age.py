"""How long each static token has been in place, for the "token not rotated" alert.

The static tokens (Entra's Secret Token, the app's token, and their secondary slots) never
expire by design: Microsoft says a long-lived Secret Token "should be perpetual, or else the
provisioning job is quarantined when the token expires" (Microsoft Learn, "Tutorial: Develop and
plan provisioning for a SCIM endpoint in Microsoft Entra ID",
https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups).
What ages is the time since the last rotation. A log search alert looks back at most two days
(Microsoft Learn, "Create or edit a log search alert rule",
https://learn.microsoft.com/en-us/azure/azure-monitor/alerts/alerts-create-log-alert-rule), so it
cannot find a rotation 180 days ago in old logs. The app knows its own tokens, though: a daily
timer (``function_app.token_age``) calls :func:`record_token_ages`, which remembers when it first
saw each token value and logs one line per configured slot with that token's age in days
(:func:`age_line`); ``infra/modules/alerts.bicep`` fires on the latest line per slot.

The age belongs to the token value, not to the slot: ``rotate-token --stage retire`` copies the
secondary token into the primary slot, and that token keeps the age it had since ``--stage add``.

No secret is stored or logged. The record (state ``tokens.age``) holds, per slot, an HMAC-SHA256
fingerprint of the token under a random 256-bit key kept in the same record, and the time it was
first seen. The fingerprint is only compared for equality; the key makes it different in every
instance and defeats precomputed tables. It does not make guessing harder than the token itself:
the tokens the deploy tool issues carry 256 random bits (docs/decisions.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim_core.errors import Conflict, PreconditionFailed
from scim_core.settings import UNRESOLVED_KEY_VAULT_REFERENCE, Settings
from scim_core.store import Store

log = logging.getLogger("scim")

#: The state record (one point read and one conditional write per run).
RECORD = "tokens.age"
#: Every per-slot line starts with this; alerts.bicep's query matches it (tests pin both).
LINE_PREFIX = "token age "
#: The static-token slots, by app-setting name (scim_core/settings.py).
SLOTS = (
    "SCIM_BEARER_TOKEN",
    "SCIM_BEARER_TOKEN_SECONDARY",
    "SCIM_APP_TOKEN",
    "SCIM_APP_TOKEN_SECONDARY",
)
#: Concurrent runs (a manual fire during the scheduled one) retry on the ETag this often.
MAX_ATTEMPTS = 5
_DAY_SECONDS = 86400


@dataclass(frozen=True)
class TokenAge:
    """A configured slot's token and when this instance first saw that token value."""

    slot: str
    first_seen: datetime
    checked: datetime

    @property
    def days(self) -> int:
        """Whole days since first seen (0 on the day the token appeared)."""
        return int((self.checked - self.first_seen).total_seconds() // _DAY_SECONDS)


def age_line(age: TokenAge) -> str:
    """The one log line per slot that the alert rule parses: ``token age <SLOT>: <n> days ...``."""
    return f"{LINE_PREFIX}{age.slot}: {age.days} days (first seen {_iso(age.first_seen)})"


def configured_tokens(settings: Settings) -> dict[str, str]:
    """Slot name -> token of every static token that is set. A value still reading
    ``@Microsoft.KeyVault(...)`` is an unresolved reference, never a token (settings.py)."""
    by_slot = {
        "SCIM_BEARER_TOKEN": settings.bearer_token,
        "SCIM_BEARER_TOKEN_SECONDARY": settings.bearer_token_secondary,
        "SCIM_APP_TOKEN": settings.app_token,
        "SCIM_APP_TOKEN_SECONDARY": settings.app_token_secondary,
    }
    tokens: dict[str, str] = {}
    for slot, value in by_slot.items():
        if value and value.startswith(UNRESOLVED_KEY_VAULT_REFERENCE):
            log.warning("token age: %s is an unresolved Key Vault reference, not a token", slot)
        elif value:
            tokens[slot] = value
    return tokens


def fingerprint(key: bytes, token: str) -> str:
    """HMAC-SHA256 of the token under the record's key (RFC 2104), base64url."""
    digest = hmac.new(key, token.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def record_token_ages(
    store: Store, settings: Settings, now: datetime | None = None
) -> list[TokenAge]:
    """Update the record with the configured tokens and log one :func:`age_line` per slot.

    A token value seen before (in any slot) keeps its first-seen time; a new value starts at
    ``now``; slots no longer configured are dropped. Storage errors propagate (the Functions
    host logs the failed invocation, and the alert sees no new line)."""
    checked = now or datetime.now(UTC)
    tokens = configured_tokens(settings)
    ages = _update(store, tokens, checked)
    for age in ages:
        log.info(age_line(age))
    if not ages:
        log.info("no static token configured: no token age to report")
    return ages


def _update(store: Store, tokens: dict[str, str], checked: datetime) -> list[TokenAge]:
    for _ in range(MAX_ATTEMPTS):
        found = store.get_state(RECORD)
        record, etag = found if found is not None else ({}, None)
        new, ages = _merge(record, tokens, checked)
        try:
            store.put_state(RECORD, new, etag)
            return ages
        except (Conflict, PreconditionFailed):  # another run wrote in between: read again
            continue
    raise Conflict(f"state {RECORD!r}: {MAX_ATTEMPTS} concurrent updates")


def _merge(
    record: dict[str, Any], tokens: dict[str, str], checked: datetime
) -> tuple[dict[str, Any], list[TokenAge]]:
    key = _key(record.get("key"))
    # Every fingerprint seen before, whatever its slot, with its earliest first-seen time.
    known: dict[str, datetime] = {}
    for entry in dict(record.get("slots") or {}).values():
        seen = _parse(entry.get("firstSeen")) if isinstance(entry, dict) else None
        if seen is not None:
            mark = str(entry.get("fingerprint"))
            known[mark] = min(seen, known.get(mark, seen))
    slots: dict[str, dict[str, str]] = {}
    ages: list[TokenAge] = []
    for slot in SLOTS:
        if slot not in tokens:
            continue
        mark = fingerprint(key, tokens[slot])
        first = min(known.get(mark, checked), checked)
        slots[slot] = {"fingerprint": mark, "firstSeen": _iso(first)}
        ages.append(TokenAge(slot, first, checked))
    encoded = base64.urlsafe_b64encode(key).decode("ascii")
    return {"key": encoded, "checked": _iso(checked), "slots": slots}, ages


def _key(stored: Any) -> bytes:
    """The record's HMAC key; a new random one when there is none (first run) or it is
    unreadable (then every token counts as new: the alert errs towards silence, not noise)."""
    if isinstance(stored, str):
        try:
            key = base64.urlsafe_b64decode(stored)
        except ValueError:
            key = b""
        if len(key) == 32:
            return key
    return secrets.token_bytes(32)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
