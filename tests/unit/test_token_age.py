"""scim_core/token_age.py: when each static token was first seen, and the line the alert reads.

The tokens never expire (Entra's Secret Token must be perpetual: Microsoft Learn, "Tutorial:
Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID"), so the age that
matters is the time since the last rotation, which the app learns by remembering when it first
saw each token value. The store here is the in-memory one (same contract as the Table store,
tests/store/test_contract.py); the local-host test fires the timer against Azurite.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_core.errors import Conflict
from scim_core.settings import Settings
from scim_core.store.memory import MemoryStore
from scim_core.token_age import (
    LINE_PREFIX,
    MAX_ATTEMPTS,
    RECORD,
    SLOTS,
    TokenAge,
    age_line,
    configured_tokens,
    record_token_ages,
)

DAY0 = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
PRIMARY, SECONDARY = "entra-token-primary-0123456789", "entra-token-secondary-9876543210"


def settings(**values: str) -> Settings:
    return Settings.from_env(values)


def ages(store: MemoryStore, config: Settings, day: int) -> dict[str, int]:
    found = record_token_ages(store, config, DAY0 + timedelta(days=day, minutes=day))
    return {age.slot: age.days for age in found}


def test_a_token_is_first_seen_at_the_first_run() -> None:
    store = MemoryStore()
    found = record_token_ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), DAY0)
    assert found == [TokenAge("SCIM_BEARER_TOKEN", DAY0, DAY0)]
    assert found[0].days == 0


def test_an_unchanged_token_keeps_its_first_seen_time() -> None:
    store, config = MemoryStore(), settings(SCIM_BEARER_TOKEN=PRIMARY)
    assert ages(store, config, 0) == {"SCIM_BEARER_TOKEN": 0}
    assert ages(store, config, 1) == {"SCIM_BEARER_TOKEN": 1}
    assert ages(store, config, 181) == {"SCIM_BEARER_TOKEN": 181}


def test_a_rotated_token_starts_again_at_zero() -> None:
    store = MemoryStore()
    ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), 0)
    assert ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), 200) == {"SCIM_BEARER_TOKEN": 200}
    assert ages(store, settings(SCIM_BEARER_TOKEN="a-new-token"), 201) == {"SCIM_BEARER_TOKEN": 0}
    assert ages(store, settings(SCIM_BEARER_TOKEN="a-new-token"), 210) == {"SCIM_BEARER_TOKEN": 9}


def test_rotate_token_stages_carry_the_new_tokens_age_into_the_primary_slot() -> None:
    """`rotate-token --stage add` puts a new token in the secondary slot; `--stage retire`
    copies it into the primary slot and puts a fresh random value in the secondary
    (infra/deploy.py). The age belongs to the value: the primary then counts from `add`."""
    store = MemoryStore()
    deployed = settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_BEARER_TOKEN_SECONDARY="idle-random")
    assert ages(store, deployed, 0) == {"SCIM_BEARER_TOKEN": 0, "SCIM_BEARER_TOKEN_SECONDARY": 0}
    added = settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_BEARER_TOKEN_SECONDARY=SECONDARY)
    assert ages(store, added, 190) == {"SCIM_BEARER_TOKEN": 190, "SCIM_BEARER_TOKEN_SECONDARY": 0}
    retired = settings(SCIM_BEARER_TOKEN=SECONDARY, SCIM_BEARER_TOKEN_SECONDARY="idle-random-2")
    assert ages(store, retired, 193) == {"SCIM_BEARER_TOKEN": 3, "SCIM_BEARER_TOKEN_SECONDARY": 0}


def test_every_slot_is_reported_entras_and_the_apps() -> None:
    store = MemoryStore()
    config = settings(**{slot: f"token-of-{slot}" for slot in SLOTS})
    assert ages(store, config, 0) == dict.fromkeys(SLOTS, 0)
    assert ages(store, config, 7) == dict.fromkeys(SLOTS, 7)


def test_a_slot_no_longer_configured_is_forgotten() -> None:
    store = MemoryStore()
    ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_APP_TOKEN="app"), 0)
    assert ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), 5) == {"SCIM_BEARER_TOKEN": 5}
    record = store.get_state(RECORD)
    assert record is not None and set(record[0]["slots"]) == {"SCIM_BEARER_TOKEN"}
    # Configured again later: a value not remembered counts from then.
    assert ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_APP_TOKEN="app"), 9) == {
        "SCIM_BEARER_TOKEN": 9,
        "SCIM_APP_TOKEN": 0,
    }


def test_no_static_token_configured_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """JWT-only instances have no static token: no per-slot line, so the alert stays quiet."""
    caplog.set_level(logging.INFO, logger="scim")
    store = MemoryStore()
    assert record_token_ages(store, settings(SCIM_JWT_ISSUER="https://issuer/"), DAY0) == []
    assert not [r for r in caplog.records if r.getMessage().startswith(LINE_PREFIX)]
    assert "no static token configured" in caplog.text


def test_an_unresolved_key_vault_reference_is_no_token(caplog: pytest.LogCaptureFixture) -> None:
    """App Service leaves the literal reference when it cannot resolve it (settings.py): its
    text is the same in every instance, so it is neither a token nor an age."""
    config = settings(
        SCIM_BEARER_TOKEN=PRIMARY,
        SCIM_BEARER_TOKEN_SECONDARY="@Microsoft.KeyVault(SecretUri=https://kv/secrets/x)",
    )
    assert configured_tokens(config) == {"SCIM_BEARER_TOKEN": PRIMARY}
    assert "SCIM_BEARER_TOKEN_SECONDARY is an unresolved Key Vault reference" in caplog.text


def test_no_secret_is_stored_or_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The record holds keyed fingerprints (HMAC-SHA256 under a random per-instance key), never
    a token or a plain hash of one; the log lines name slots and days only."""
    import base64
    import hashlib

    caplog.set_level(logging.INFO, logger="scim")
    store = MemoryStore()
    config = settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_APP_TOKEN="app-token-abcdefghijklmnop")
    record_token_ages(store, config, DAY0)
    found = store.get_state(RECORD)
    assert found is not None
    text = json.dumps(found[0])
    for token in (PRIMARY, "app-token-abcdefghijklmnop"):
        assert token not in text and token not in caplog.text
        digest = hashlib.sha256(token.encode()).digest()
        for plain in (digest.hex(), base64.urlsafe_b64encode(digest).decode().rstrip("=")):
            assert plain not in text
    assert len(base64.urlsafe_b64decode(found[0]["key"])) == 32


def test_the_same_token_has_another_fingerprint_in_another_instance() -> None:
    first, second = MemoryStore(), MemoryStore()
    for store in (first, second):
        record_token_ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), DAY0)
    prints = []
    for store in (first, second):
        found = store.get_state(RECORD)
        assert found is not None
        prints.append(found[0]["slots"]["SCIM_BEARER_TOKEN"]["fingerprint"])
    assert prints[0] != prints[1]


def test_one_line_per_slot_with_its_age(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scim")
    store = MemoryStore()
    config = settings(SCIM_BEARER_TOKEN=PRIMARY, SCIM_BEARER_TOKEN_SECONDARY=SECONDARY)
    record_token_ages(store, config, DAY0)
    caplog.clear()
    record_token_ages(store, config, DAY0 + timedelta(days=181, hours=2))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(LINE_PREFIX)]
    assert lines == [
        "token age SCIM_BEARER_TOKEN: 181 days (first seen 2026-01-01T05:30:00Z)",
        "token age SCIM_BEARER_TOKEN_SECONDARY: 181 days (first seen 2026-01-01T05:30:00Z)",
    ]


@pytest.mark.parametrize(
    ("elapsed", "days"),
    [
        (timedelta(0), 0),
        (timedelta(hours=23, minutes=59), 0),
        (timedelta(days=1), 1),
        (timedelta(days=179, hours=23), 179),
        (timedelta(days=180), 180),
    ],
    ids=["same-moment", "just-under-a-day", "one-day", "just-under-180", "180"],
)
def test_days_are_whole_days_since_first_seen(elapsed: timedelta, days: int) -> None:
    age = TokenAge("SCIM_BEARER_TOKEN", DAY0, DAY0 + elapsed)
    assert age.days == days
    assert age_line(age).startswith(f"{LINE_PREFIX}SCIM_BEARER_TOKEN: {days} days ")


class RacingStore(MemoryStore):
    """Another run writes the record between this run's read and write, ``races`` times."""

    def __init__(self, races: int, config: Settings) -> None:
        super().__init__()
        self.races = races
        self.config = config

    def put_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        if self.races:
            self.races -= 1
            found = self.get_state(name)
            MemoryStore.put_state(self, name, {"racer": True}, found[1] if found else None)
        return super().put_state(name, value, etag)


def test_a_concurrent_run_is_retried_on_the_etag() -> None:
    store = RacingStore(2, settings(SCIM_BEARER_TOKEN=PRIMARY))
    found = record_token_ages(store, store.config, DAY0)
    assert [a.slot for a in found] == ["SCIM_BEARER_TOKEN"]
    record = store.get_state(RECORD)
    assert record is not None and "racer" not in record[0]


def test_endless_concurrent_runs_give_up_with_a_conflict() -> None:
    store = RacingStore(MAX_ATTEMPTS, settings(SCIM_BEARER_TOKEN=PRIMARY))
    with pytest.raises(Conflict, match="concurrent"):
        record_token_ages(store, store.config, DAY0)


@pytest.mark.parametrize(
    "record",
    [
        {"key": "not base64 !", "slots": {}},
        {"key": "c2hvcnQ=", "slots": {"SCIM_BEARER_TOKEN": "garbage"}},
        {"slots": {"SCIM_BEARER_TOKEN": {"fingerprint": "x", "firstSeen": "yesterday"}}},
    ],
    ids=["bad-key", "short-key-and-bad-slot", "bad-time"],
)
def test_an_unreadable_record_starts_afresh(record: dict[str, Any]) -> None:
    """Nothing in the record can fail the run; what cannot be read counts as never seen."""
    store = MemoryStore()
    store.put_state(RECORD, record, None)
    assert ages(store, settings(SCIM_BEARER_TOKEN=PRIMARY), 3) == {"SCIM_BEARER_TOKEN": 0}
