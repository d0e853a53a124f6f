"""Throttling, server errors, credentials and permissions: a run honours Retry-After within
its budget, otherwise stops at its checkpoint; trouble is one log line and a status record,
never an exception into the host (Microsoft Learn, "Microsoft Graph throttling guidance";
"Microsoft Graph error responses and resource types")."""

from __future__ import annotations

import dataclasses

import pytest

from graph_enrich.state import CURSOR, STATUS
from scim_core.settings import Settings
from tests.graph.conftest import NoCredential, provision, sync
from tests.graph.fake_graph import Fault


def _tenant(fake, store, users=4):
    for n in range(users):
        object_id = fake.put_user(userPrincipalName=f"u{n}@contoso.com", accountEnabled=True)
        provision(store, f"u{n}@contoso.com", object_id)


def _on_next_link(method: str, path: str) -> bool:
    return path.endswith("/users/delta")


@pytest.mark.parametrize(
    ("status", "code"), [(429, "TooManyRequests"), (503, "serviceNotAvailable")], ids=["429", "503"]
)
def test_retry_after_is_honoured(fake, settings, store, options, sleeps, status, code):
    """429 and 503 with Retry-After: wait that long, then retry the same request."""
    _tenant(fake, store)
    fake.fail(Fault(status, code, retry_after=7, match=_on_next_link))
    report = sync(settings, store, options)
    assert report.outcome == "complete" and report.enriched == 4
    assert sleeps.waits == [7.0] and report.waits == 1


def test_server_errors_are_retried_with_backoff(fake, settings, store, options, sleeps):
    """A 500 or 502 without Retry-After is retried with exponential backoff."""
    _tenant(fake, store)
    fake.fail(Fault(500, "generalException", match=_on_next_link, times=2))
    report = sync(settings, store, options)
    assert report.outcome == "complete" and sleeps.waits == [2.0, 4.0]


def test_persistent_server_errors_stop_the_run_at_its_checkpoint(
    fake, settings, store, options, sleeps
):
    """Still failing after the retries: the run stops ("partial"), the error is recorded and
    the cursor still points at the page that failed, so the next run resumes there."""
    _tenant(fake, store)
    fake.fail(Fault(503, "serviceNotAvailable", match=_on_next_link, times=10))
    report = sync(settings, store, options)
    assert (report.outcome, report.error_kind, report.pages) == ("partial", "throttled", 1)
    assert "$skiptoken=" in store.get_state(CURSOR)[0]["link"]
    status = store.get_state(STATUS)[0]
    assert status["lastError"]["kind"] == "throttled" and status["consecutiveFailures"] == 1
    fake.faults.clear()
    report = sync(settings, store, options)
    assert report.outcome == "complete" and store.get_state(STATUS)[0]["consecutiveFailures"] == 0


def test_a_retry_after_beyond_the_budget_is_not_waited_for(fake, settings, store, options, sleeps):
    """Retry-After longer than what is left of the run: no sleep past the Functions timeout;
    the run stops cleanly and the next one resumes from the checkpoint."""
    _tenant(fake, store)
    fake.fail(Fault(429, "TooManyRequests", retry_after=600, match=_on_next_link))
    report = sync(settings, store, options)
    assert (report.outcome, report.error_kind) == ("partial", "throttled")
    assert sleeps.waits == []
    assert sync(settings, store, options).outcome == "complete"


def test_missing_credentials_are_a_clear_error(fake, settings, store, options, caplog):
    """No credential can get a token: one clear ERROR line, the error in the status record,
    no exception for the host, and the SCIM data untouched."""
    _tenant(fake, store, users=1)
    with caplog.at_level("INFO", logger="graph_enrich"):
        report = sync(settings, store, dataclasses.replace(options, credential=NoCredential()))
    assert (report.outcome, report.error_kind) == ("failed", "credentials")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "credentials" in errors[0].getMessage()
    assert "no Graph token" in store.get_state(STATUS)[0]["lastError"]["message"]
    assert fake.requests == []


def test_forbidden_is_a_clear_error(fake, settings, store, options):
    """403 Authorization_RequestDenied: the identity lacks User.Read.All; say so."""
    _tenant(fake, store, users=1)
    fake.forbidden = True
    report = sync(settings, store, options)
    assert (report.outcome, report.error_kind) == ("failed", "forbidden")
    assert "User.Read.All" in report.error
    assert store.get_state(STATUS)[0]["lastError"]["kind"] == "forbidden"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRAPH_JOIN", "email"),
        ("GRAPH_DEPROVISION", "delete"),
        ("GRAPH_BASE_URL", "http://graph.example.com/v1.0"),
    ],
    ids=["join", "deprovision", "plain-http"],
)
def test_bad_settings_are_a_clear_error(settings, store, options, name, value):
    bad = Settings.from_env({**settings.as_env(), name: value})
    report = sync(bad, store, options)
    assert (report.outcome, report.error_kind) == ("failed", "configuration")
    assert name in report.error


def test_half_configured_client_secret_is_a_clear_error(settings, store, sleeps):
    """GRAPH_CLIENT_SECRET without GRAPH_TENANT_ID/GRAPH_CLIENT_ID names what is missing."""
    from graph_enrich import SyncOptions

    half = Settings.from_env({**settings.as_env(), "GRAPH_CLIENT_SECRET": "s3cret"})
    report = sync(half, store, SyncOptions(sleep=sleeps))
    assert report.error_kind == "configuration"
    assert "GRAPH_TENANT_ID" in report.error and "GRAPH_CLIENT_ID" in report.error
