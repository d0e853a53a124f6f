"""The token-age timer through the local host: ``POST /admin/functions/token_age`` with the
host's per-run key (as ``make sync`` fires ``graph_sync`` on a running host), over Azurite.

What the "token not rotated" alert needs from a run (infra/modules/alerts.bicep): one log line
per configured token slot with its age in days, and a first-seen time that survives the next
run. What must never happen: the token in the log or in storage.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
import requests

import function_app
from devhost.server import LocalHost
from scim_core.token_age import LINE_PREFIX, RECORD
from tests.scimclient import Client


def fire_token_age(local: LocalHost) -> None:
    url = f"{local.base_url}/admin/functions/token_age"
    headers = {"x-functions-key": local.admin_key}
    response = requests.post(url, json={"input": ""}, headers=headers, timeout=30)
    assert response.status_code == 202, response.text


def test_firing_the_timer_logs_the_tokens_age_and_keeps_its_first_seen_time(
    host: tuple[LocalHost, str], scim: Client, caplog: pytest.LogCaptureFixture
) -> None:
    local, token = host
    caplog.set_level(logging.INFO, logger="scim")
    before = datetime.now(UTC).replace(microsecond=0)
    fire_token_age(local)
    found = function_app.store().get_state(RECORD)
    assert found is not None
    slots = found[0]["slots"]
    assert set(slots) == {"SCIM_BEARER_TOKEN"}  # the session host sets only Entra's primary
    first_seen = slots["SCIM_BEARER_TOKEN"]["firstSeen"]
    assert datetime.fromisoformat(first_seen.replace("Z", "+00:00")) >= before
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(LINE_PREFIX)]
    assert lines == [f"{LINE_PREFIX}SCIM_BEARER_TOKEN: 0 days (first seen {first_seen})"]

    fire_token_age(local)
    again = function_app.store().get_state(RECORD)
    assert again is not None and again[0]["slots"] == slots
    assert token not in caplog.text and token not in json.dumps(again[0])
