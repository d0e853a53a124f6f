"""The change-notification webhook and the subscription the timer keeps (Microsoft Learn,
"Receive change notifications through webhooks")."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

import graph_enrich.notifications as notifications
from graph_enrich import WebhookRequest, receive
from graph_enrich.state import NOTIFICATIONS, SUBSCRIPTION, iso
from scim_core.settings import Settings
from tests.graph.conftest import sync

STATE = "a-secret-client-state"
URL = "https://scim.example/graph/notifications"


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    return Settings.from_env(
        {
            **settings.as_env(),
            "GRAPH_CLIENT_STATE": STATE,
            "GRAPH_NOTIFICATION_URL": URL,
        }
    )


def _notification(client_state: str = STATE, **extra: object) -> bytes:
    return json.dumps(
        {
            "value": [
                {
                    "subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
                    "clientState": client_state,
                    "changeType": "updated",
                    "resource": "Users/5c1d",
                    "tenantId": "84bd8158",
                    "resourceData": {"@odata.type": "#Microsoft.Graph.User", "id": "5c1d"},
                    **extra,
                }
            ]
        }
    ).encode()


def test_validation_handshake_echoes_the_decoded_token(hooked, store):
    """200, text/plain, the URL-decoded token as the body (never HTML: nosniff). Graph's own
    token is plain printable text, which escaping leaves exactly as sent."""
    token = (
        "Validation: Testing client application reachability for subscription Request-Id:"
        " 1f3b6a2e-0d3c-4f1e-9b2a-5c6d7e8f9a0b"
    )
    reply = receive(WebhookRequest({"validationToken": token}), hooked, store)
    assert (reply.status, reply.body.decode()) == (200, token)
    assert reply.content_type.startswith("text/plain")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("token", "echoed"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a & b", "a &amp; b"),
        ("\"quoted\" 'single'", "&quot;quoted&quot; &#x27;single&#x27;"),
    ],
    ids=["markup", "ampersand", "quotes"],
)
def test_validation_token_is_escaped_before_it_is_echoed(hooked, store, token, echoed):
    """The echo reflects caller-chosen text: markup comes back escaped, so the reply is inert
    even where text/plain and nosniff are ignored (Learn, "Receive change notifications
    through webhooks", advises escaping the token)."""
    reply = receive(WebhookRequest({"validationToken": token}), hooked, store)
    assert (reply.status, reply.body.decode()) == (200, echoed)


@pytest.mark.parametrize(
    "token",
    ["line\r\nSet-Cookie: a=b", "nul\x00byte", "bell\x07", "tab\tinside"],
    ids=["crlf", "nul", "bell", "tab"],
)
def test_validation_token_with_control_characters_is_400(hooked, store, token):
    """Graph's tokens are printable text; control characters are never echoed."""
    reply = receive(WebhookRequest({"validationToken": token}), hooked, store)
    assert reply.status == 400
    assert token.encode() not in reply.body


def test_validation_token_too_long_is_400(hooked, store):
    reply = receive(WebhookRequest({"validationToken": "x" * 2049}), hooked, store)
    assert reply.status == 400


def test_an_unresolved_key_vault_reference_is_never_the_client_state(hooked, store):
    """GRAPH_CLIENT_STATE is a Key Vault reference in Azure. Unresolved, the setting holds the
    reference's own (guessable) text: a notification quoting it must not be acted upon."""
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/graph-client-state)"
    )
    unresolved = Settings.from_env({**hooked.as_env(), "GRAPH_CLIENT_STATE": reference})
    started: list[Settings] = []
    reply = receive(
        WebhookRequest({}, _notification(reference)),
        unresolved,
        store,
        start_sync=lambda s, st: started.append(s),
    )
    assert reply.status == 503 and started == []
    assert store.get_state(NOTIFICATIONS) is None


def test_without_a_client_state_the_webhook_is_off(settings, store):
    assert receive(WebhookRequest({"validationToken": "x"}), settings, store).status == 404


def test_a_valid_notification_is_recorded_and_starts_a_sync(hooked, store):
    """202 at once; the request is persisted (state table) before the answer, and the early
    sync is started in the background."""
    started: list[Settings] = []
    reply = receive(
        WebhookRequest({}, _notification()),
        hooked,
        store,
        start_sync=lambda s, st: started.append(s),
    )
    assert reply.status == 202 and started == [hooked]
    record = store.get_state(NOTIFICATIONS)[0]
    assert record["count"] == 1 and record["requested"]


def test_a_wrong_client_state_is_ignored(hooked, store, monkeypatch):
    """clientState is compared in constant time; a mismatch is never acted upon (202 all the
    same, so a forger learns nothing and Graph does not retry for hours)."""
    compared: list[tuple[bytes, bytes]] = []
    real = notifications.hmac.compare_digest
    monkeypatch.setattr(
        notifications.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b)
    )
    started: list[Settings] = []
    reply = receive(
        WebhookRequest({}, _notification("guess")),
        hooked,
        store,
        start_sync=lambda s, st: started.append(s),
    )
    assert reply.status == 202 and started == [] and store.get_state(NOTIFICATIONS) is None
    assert compared == [(b"guess", STATE.encode())]


@pytest.mark.parametrize(
    "body", [b"", b"{not json", b'{"value": 3}', b"[]"], ids=["empty", "broken", "no-list", "array"]
)
def test_malformed_bodies_are_400(hooked, store, body):
    assert receive(WebhookRequest({}, body), hooked, store, lambda s, st: None).status == 400


def test_lifecycle_events_make_the_timer_renew_or_recreate(hooked, store):
    """reauthorizationRequired / subscriptionRemoved: the next run renews or re-creates."""
    store.put_state(SUBSCRIPTION, {"id": "sub-1", "expires": "2099-01-01T00:00:00Z"}, None)
    body = _notification(lifecycleEvent="subscriptionRemoved")
    assert receive(WebhookRequest({}, body), hooked, store, lambda s, st: None).status == 202
    record = store.get_state(SUBSCRIPTION)[0]
    assert record["renew"] is True and record["id"] is None


def test_bursts_of_notifications_coalesce_into_few_runs(hooked, store, monkeypatch):
    """The background run is debounced and single: ten notifications during one run queue
    exactly one more run."""
    runs: list[str] = []
    gate = threading.Event()

    def fake_run(settings, store, options):
        runs.append(options.reason)
        gate.wait(5)

    monkeypatch.setattr(notifications, "DEBOUNCE_SECONDS", 0.0)
    monkeypatch.setattr("graph_enrich.sync.run_sync", fake_run)
    background = notifications._Background()
    for _ in range(10):
        background.request(hooked, store)
        time.sleep(0.01)
    gate.set()
    assert background.wait_idle(10)
    assert runs == ["notification", "notification"]


def test_the_timer_creates_then_keeps_the_subscription(fake, hooked, store, options):
    """With GRAPH_NOTIFICATION_URL the run creates a subscription on users (updated, deleted;
    lifecycle events to the same URL) and leaves it alone until it nears expiry."""
    fake.validate_notification_url = False  # the handshake itself: tests/graph/test_end_to_end
    report = sync(hooked, store, options)
    assert report.outcome == "complete" and report.subscription == "created"
    (sub,) = fake.subscriptions.values()
    assert (sub["resource"], sub["changeType"], sub["clientState"]) == (
        "users",
        "updated,deleted",
        STATE,
    )
    assert sub["notificationUrl"] == sub["lifecycleNotificationUrl"] == URL
    assert sync(hooked, store, options).subscription is None


def test_a_subscription_near_expiry_is_renewed(fake, hooked, store, options):
    fake.validate_notification_url = False
    sync(hooked, store, options)
    record, etag = store.get_state(SUBSCRIPTION)
    soon = iso(datetime.now(UTC) + timedelta(days=1))
    store.put_state(SUBSCRIPTION, {**record, "expires": soon}, etag)
    assert sync(hooked, store, options).subscription == "renewed"
    (sub,) = fake.subscriptions.values()
    assert sub["id"] == record["id"]
    renewed = datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00"))
    assert renewed > datetime.now(UTC) + timedelta(days=20)


def test_a_new_client_state_replaces_the_subscription(fake, hooked, store, options):
    fake.validate_notification_url = False
    sync(hooked, store, options)
    rotated = Settings.from_env({**hooked.as_env(), "GRAPH_CLIENT_STATE": "rotated"})
    assert sync(rotated, store, options).subscription == "created"
    assert [s["clientState"] for s in fake.subscriptions.values()] == ["rotated"]


def test_unsetting_the_url_deletes_the_subscription(fake, hooked, settings, store, options):
    fake.validate_notification_url = False
    sync(hooked, store, options)
    assert sync(settings, store, options).subscription == "deleted"
    assert fake.subscriptions == {}


def test_subscription_trouble_does_not_stop_the_sync(fake, hooked, store, options):
    """Graph refuses the subscription (its validation request failed): a warning; the delta
    sync runs all the same."""
    fake.validate_notification_url = True
    unreachable = Settings.from_env(
        {**hooked.as_env(), "GRAPH_NOTIFICATION_URL": "http://127.0.0.1:9/x"}
    )
    fake.put_user(userPrincipalName="a@contoso.com", accountEnabled=True)
    report = sync(unreachable, store, options)
    assert report.outcome == "complete" and report.changes == 1
    assert any("subscription" in w for w in report.warnings)
    missing_state = Settings.from_env({**hooked.as_env(), "GRAPH_CLIENT_STATE": ""})
    report = sync(missing_state, store, options)
    assert any("GRAPH_CLIENT_STATE" in w for w in report.warnings)
