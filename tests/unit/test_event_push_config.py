"""The push settings: where SETs may go, the give-up time, and what a receiver's answer means
(scim_core/events/push.py; RFC 8935 §2.2-§2.4)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from scim_core.events.push import PushConfig, _classify, backoff_seconds, check_push_url
from scim_core.settings import Settings
from scim_core.wiring import ConfigurationError, build_router


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://app.contoso.com/scim-events", True),
        ("http://127.0.0.1:8080/push", True),
        ("http://localhost/push", True),
        ("http://[::1]:9/push", True),
        ("http://app.contoso.com/push", False),
        ("ftp://app.contoso.com/push", False),
        ("https:///push", False),
        ("https://user:secret@app.contoso.com/push", False),
    ],
    ids=["https", "loopback", "localhost", "ipv6-loopback", "http", "ftp", "no-host", "userinfo"],
)
def test_sets_go_over_https_only_but_to_the_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_push_url(url) == url
    else:
        with pytest.raises(ValueError, match="SCIM_EVENTS_PUSH_URL"):
            check_push_url(url)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, None),
        (
            {"SCIM_EVENTS_PUSH_URL": "https://a.test/p", "SCIM_EVENTS_PUSH_TOKEN": "t"},
            PushConfig("https://a.test/p", "t", timedelta(hours=24)),
        ),
        (
            {"SCIM_EVENTS_PUSH_URL": "https://a.test/p", "SCIM_EVENTS_PUSH_GIVE_UP_HOURS": "1.5"},
            PushConfig("https://a.test/p", None, timedelta(hours=1.5)),
        ),
    ],
    ids=["off", "token", "give-up"],
)
def test_the_push_settings(settings: dict[str, str], expected: PushConfig | None) -> None:
    assert PushConfig.from_settings(Settings.from_env(settings)) == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SCIM_EVENTS_PUSH_URL": "http://app.test/"}, "must use https"),
        ({"SCIM_EVENTS_PUSH_GIVE_UP_HOURS": "0"}, "GIVE_UP_HOURS"),
        ({"SCIM_EVENTS_PUSH_GIVE_UP_HOURS": "soon"}, "GIVE_UP_HOURS"),
    ],
    ids=["http", "zero-hours", "not-a-number"],
)
def test_a_push_that_cannot_work_is_a_start_up_error(
    settings: dict[str, str], message: str
) -> None:
    env = {
        "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "SCIM_BEARER_TOKEN": "t" * 32,
        "SCIM_EVENTS": "notice",
        "SCIM_EVENTS_UNSIGNED": "true",
        "SCIM_EVENTS_PUSH_URL": "https://app.test/push",
        **settings,
    }
    with pytest.raises(ConfigurationError, match=message):
        build_router(Settings.from_env(env))


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "kind"),
    [
        (202, b"", None, "delivered"),
        (200, b"", None, "delivered"),
        (400, b'{"err":"invalid_request","description":"bad"}', None, "refused"),
        (400, b'{"err":"invalid_key"}', None, "failed"),
        (400, b'{"err":"invalid_issuer"}', None, "failed"),
        (400, b'{"err":"access_denied"}', None, "failed"),
        (400, b'{"err":"something_new"}', None, "failed"),
        (400, b'{"description":"no err"}', None, "failed"),
        (400, b"\xff", None, "failed"),
        (500, b"", None, "failed"),
        (429, b"", "120", "failed"),
    ],
    ids=[
        "202",
        "200",
        "invalid-request",
        "invalid-key",
        "invalid-issuer",
        "access-denied",
        "unregistered",
        "no-err",
        "not-utf8",
        "500",
        "429",
    ],
)
def test_what_an_answer_means(status: int, body: bytes, retry_after: str | None, kind: str) -> None:
    answer = _classify(status, retry_after, body)
    assert answer.kind == kind
    if kind == "refused":
        assert answer.error == json.loads(body)
    if retry_after:
        assert answer.retry_after == float(retry_after)


@pytest.mark.parametrize(
    ("failures", "retry_after", "wait"),
    [(1, None, 30), (2, None, 60), (5, None, 480), (6, None, 900), (60, None, 900), (1, 600, 600)],
    ids=["first", "second", "fifth", "capped", "long-streak", "retry-after"],
)
def test_the_back_off(failures: int, retry_after: float | None, wait: float) -> None:
    assert backoff_seconds(failures, retry_after) == wait


def test_an_unresolved_push_token_waits_for_the_run_not_the_start() -> None:
    """A Key Vault reference not resolved yet (a first deploy) must not stop provisioning: the
    router builds, and the push run is the one that refuses (and is recorded as failing)."""
    env = {
        "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "SCIM_BEARER_TOKEN": "t" * 32,
        "SCIM_EVENTS": "notice",
        "SCIM_EVENTS_UNSIGNED": "true",
        "SCIM_EVENTS_PUSH_URL": "https://app.test/push",
        "SCIM_EVENTS_PUSH_TOKEN": "@Microsoft.KeyVault(SecretUri=x)",
    }
    assert build_router(Settings.from_env(env)).events is not None
    with pytest.raises(ValueError, match="unresolved"):
        PushConfig.from_settings(Settings.from_env(env))
