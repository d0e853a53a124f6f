"""The deploy tool's real (non-dry-run) paths, against a fake `az` and a loopback SCIM stub.

The fake executor answers the az commands the tool runs and records each command line, so the
tests can prove the token travels only through the temp file and is shown exactly once. The stub
server on 127.0.0.1 plays the deployed app for the Test Connection smoke test.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra import deploy, smoke
from infra.azcli import AzureCli

TENANT = "11111111-2222-3333-4444-555555555555"


class FakeAz:
    """Answers the az (and pip) commands the deploy tool runs; keeps Key Vault in a dict."""

    def __init__(
        self,
        tenant_url: str,
        secrets: dict[str, tuple[str, str]] | None = None,
        permissions: dict[str, list[dict[str, list[str]]]] | None = None,
    ) -> None:
        self.tenant_url = tenant_url
        self.secrets = dict(secrets or {})  # name -> (value, role tag)
        #: Scope (resource id) -> the Microsoft.Authorization/permissions answer's "value" list;
        #: a scope not listed holds everything (an Owner), as the happy-path tests assume.
        self.permissions = dict(permissions or {})
        self.argvs: list[list[str]] = []
        self.secret_files: list[str] = []
        self.published: list[str] = []
        self.restarts = 0
        self.secret_updated: dict[str, str] = {}  # name -> attributes.updated (ISO 8601)
        self.workbook_id = (
            "/subscriptions/s/resourceGroups/rg-scim-contoso/providers/"
            "Microsoft.Insights/workbooks/0f1e2d3c-0000-4000-8000-000000000000"
        )
        # Resource groups: contoso's as the deploy tool tags it, and one azd made (no tenant tag).
        self.groups: dict[str, dict[str, Any]] = {
            "rg-scim-contoso": {
                "location": "westeurope",
                "tags": {
                    "scim-customer": "contoso",
                    "scim-product": "scim-func",
                    "scim-tenant": TENANT,
                },
            },
            "rg-azd": {"location": "westeurope", "tags": {"azd-env-name": "contoso"}},
        }

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        argv = list(argv)
        self.argvs.append(argv)
        joined = " ".join(argv)
        if "-m pip install" in joined:
            target = Path(argv[argv.index("--target") + 1])
            (target / "pydantic").mkdir(parents=True)
            (target / "pydantic" / "__init__.py").write_text("")
            return 0, "", ""
        if joined.startswith("az account show"):
            return 0, TENANT + "\n", ""
        if joined.startswith("az ad signed-in-user show"):
            return 0, "deployer-object-id\n", ""
        if joined.startswith("az group exists"):
            return 0, ("true" if argv[argv.index("--name") + 1] in self.groups else "false"), ""
        if joined.startswith("az group show"):
            group = self.groups.get(argv[argv.index("--name") + 1])
            if group is None:
                return 3, "", "(ResourceGroupNotFound) Resource group could not be found."
            query = argv[argv.index("--query") + 1]
            return 0, json.dumps(group["tags"] if query == "tags" else group), ""
        if joined.startswith("az group create"):
            at = argv.index("--tags") + 1
            tags = dict(t.split("=", 1) for t in argv[at : argv.index("--output")])
            name, location = argv[argv.index("--name") + 1], argv[argv.index("--location") + 1]
            self.groups[name] = {"location": location, "tags": tags}
            return 0, "", ""
        if joined.startswith("az group list --tag scim-product=scim-func"):
            listed = [
                {"name": n, **g}
                for n, g in self.groups.items()
                if g["tags"].get("scim-product") == "scim-func"
            ]
            return 0, json.dumps(listed), ""
        if joined.startswith("az resource list --tag scim-product=scim-func"):
            return (
                0,
                json.dumps(
                    [
                        {
                            "group": "rg-azd",
                            "location": "westeurope",
                            "tags": {"scim-customer": "azdco"},
                        }
                    ]
                ),
                "",
            )
        if joined.startswith("az deployment group create"):
            return 0, json.dumps(self._outputs()), ""
        if joined.startswith("az resource list"):
            return (
                0,
                json.dumps(
                    [
                        {"name": "func-scim-contoso-x", "type": "Microsoft.Web/sites"},
                        {"name": "kv-contoso-x", "type": "Microsoft.KeyVault/vaults"},
                        {
                            "name": "id-scim-contoso",
                            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                        },
                        {"name": "stcontosox", "type": "Microsoft.Storage/storageAccounts"},
                    ]
                ),
                "",
            )
        if joined.startswith("az functionapp show"):
            return 0, urllib.parse.urlsplit(self.tenant_url).netloc + "\n", ""
        if joined.startswith("az keyvault secret list"):
            return 0, json.dumps(sorted(self.secrets)), ""
        if joined.startswith("az keyvault secret set"):
            path = argv[argv.index("--file") + 1]
            self.secret_files.append(path)
            role = argv[argv.index("--tags") + 1].removeprefix("role=")
            self.secrets[argv[argv.index("--name") + 1]] = (Path(path).read_text(), role)
            return 0, "", ""
        if joined.startswith("az keyvault secret show") and "attributes.updated" in argv:
            name = argv[argv.index("--name") + 1]
            return 0, self.secret_updated.get(name, "2026-01-01T00:00:00+00:00") + "\n", ""
        if joined.startswith("az deployment group show"):
            return 0, self.workbook_id + "\n", ""
        if joined.startswith("az keyvault secret show"):
            value, role = self.secrets[argv[argv.index("--name") + 1]]
            return 0, json.dumps({"value": value, "role": role}), ""
        if joined.startswith("az rest --method get --url"):
            url = argv[argv.index("--url") + 1]
            scope = url.split("/providers/Microsoft.Authorization/permissions?")[0]
            value = self.permissions.get(scope, [{"actions": ["*"], "notActions": []}])
            return 0, json.dumps({"value": value}), ""
        if joined.startswith("az group delete") or joined.startswith("az keyvault purge"):
            return 0, "", ""
        if joined.startswith("az functionapp restart"):
            self.restarts += 1
            return 0, "", ""
        if joined.startswith("az functionapp deployment source config-zip"):
            archive = argv[argv.index("--src") + 1]
            with zipfile.ZipFile(archive) as bundle:
                self.published = bundle.namelist()
            return 0, "", ""
        return 1, "", f"FakeAz does not know: {joined}"

    def _outputs(self) -> dict[str, dict[str, str]]:
        return {
            "scimTenantUrl": {"value": self.tenant_url},
            "functionAppName": {"value": "func-scim-contoso-x"},
            "keyVaultName": {"value": "kv-contoso-x"},
            "secretName": {"value": deploy.PRIMARY_SECRET},
            "managedIdentityName": {"value": "id-scim-contoso"},
        }


class ScimStub(BaseHTTPRequestHandler):
    """Answers Test Connection like the app: 401 without the primary token, else an empty list."""

    accepted: set[str] = set()
    total_results = 0
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests.append(self.path)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.accepted:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": self.total_results,
                "Resources": [],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/scim+json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def scim_stub() -> Iterator[str]:
    ScimStub.accepted, ScimStub.total_results, ScimStub.requests = set(), 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScimStub)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/scim/v2"
    server.shutdown()
    server.server_close()
    thread.join()


class AcceptStoredToken(FakeAz):
    """Once the primary token is in the fake vault, the stub accepts it (as the app would)."""

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        result = super().__call__(argv)
        ScimStub.accepted = {value for value, _ in self.secrets.values()}
        return result


def run(fake: FakeAz, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    az = AzureCli(dry_run=False, out=out, executor=fake, sleep=lambda _: None)
    code = deploy.main(list(args), az=az)
    return code, out.getvalue()


def test_deploy_shows_the_new_token_once_and_never_puts_it_in_a_command(scim_stub: str) -> None:
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    token, role = fake.secrets[deploy.PRIMARY_SECRET]
    assert role == "primary" and len(token) == 64
    assert out.count(token) == 1
    assert f"Secret Token: {token}" in out
    assert all(token not in " ".join(argv) for argv in fake.argvs)
    assert all(not Path(path).exists() for path in fake.secret_files)


def test_deploy_fills_the_secondary_slot_with_an_unrevealed_value(scim_stub: str) -> None:
    """An unresolvable Key Vault reference would leave a guessable literal as an accepted token."""
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    filler, role = fake.secrets[deploy.SECONDARY_SECRET]
    assert role == "disabled" and len(filler) == 64
    assert filler not in out


def test_deploy_publishes_code_and_linux_dependencies(scim_stub: str) -> None:
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(fake.published)
    assert ".python_packages/lib/site-packages/pydantic/__init__.py" in fake.published
    assert any(name.startswith("scim_core/") for name in fake.published)
    assert not any(name.startswith(("tests/", "infra/", ".venv")) for name in fake.published)


def test_deploy_smoke_tests_like_entra_test_connection(scim_stub: str) -> None:
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    assert "Smoke test passed" in out
    users, groups = ScimStub.requests
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(users).query)
    assert users.startswith("/scim/v2/Users?")
    (user_filter,) = query["filter"]
    # The matching attribute docs/entra-setup.md recommends; Entra filters on the matching one.
    assert user_filter.startswith('externalId eq "') and user_filter.endswith('"')
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(groups).query)
    assert groups.startswith("/scim/v2/Groups?")
    assert query["excludedAttributes"] == ["members"]
    (group_filter,) = query["filter"]
    assert group_filter.startswith('displayName eq "') and group_filter.endswith('"')


def test_deploy_generates_the_events_signing_key_and_push_token_unrevealed(
    scim_stub: str,
) -> None:
    """docs/events.md: a P-256 key the app can load (SetEncoder) and a push token, written to
    Key Vault through private files, never printed or passed in argv."""
    from scim_core.events.tokens import SetEncoder

    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    pem, role = fake.secrets[deploy.EVENTS_SIGNING_KEY_SECRET]
    assert role == "signing" and pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert SetEncoder(issuer="urn:test", signing_key=pem).alg == "ES256"
    push, role = fake.secrets[deploy.EVENTS_PUSH_TOKEN_SECRET]
    assert role == "push" and len(push) == 64
    for secret in (pem, push):
        assert secret not in out and all(secret not in " ".join(a) for a in fake.argvs)


def test_redeploy_keeps_the_existing_token(scim_stub: str) -> None:
    """Re-running deploy (e.g. for new code) must not break a working Entra connection."""
    existing = {
        deploy.PRIMARY_SECRET: ("x" * 64, "primary"),
        deploy.SECONDARY_SECRET: ("y" * 64, "disabled"),
        deploy.GRAPH_CLIENT_STATE_SECRET: ("z" * 64, "client-state"),
        deploy.APP_TOKEN_SECRET: ("a" * 64, "app-primary"),
        deploy.APP_TOKEN_SECONDARY_SECRET: ("b" * 64, "disabled"),
        deploy.EVENTS_SIGNING_KEY_SECRET: ("-----BEGIN PRIVATE KEY-----", "signing"),
        deploy.EVENTS_PUSH_TOKEN_SECRET: ("c" * 64, "push"),
    }
    fake = AcceptStoredToken(scim_stub, existing)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    assert fake.secrets == existing
    assert "Secret Token: unchanged" in out
    assert "x" * 64 not in out
    assert fake.restarts == 0


def test_deploy_refuses_another_tenant(scim_stub: str) -> None:
    fake = AcceptStoredToken(scim_stub)
    with pytest.raises(SystemExit, match="az login --tenant"):
        run(
            fake,
            "deploy",
            "contoso",
            "--location",
            "westeurope",
            "--tenant-id",
            "99999999-2222-3333-4444-555555555555",
        )
    assert not any(argv[:3] == ["az", "group", "create"] for argv in fake.argvs)


def test_rotation_add_then_retire(scim_stub: str) -> None:
    old = {
        deploy.PRIMARY_SECRET: ("o" * 64, "primary"),
        deploy.SECONDARY_SECRET: ("f" * 64, "disabled"),
    }
    fake = FakeAz(scim_stub, old)

    code, out = run(fake, "rotate-token", "contoso", "--stage", "add")
    assert code == 0, out
    new, role = fake.secrets[deploy.SECONDARY_SECRET]
    assert role == "pending" and fake.secrets[deploy.PRIMARY_SECRET] == ("o" * 64, "primary")
    assert out.count(new) == 1

    code, out = run(fake, "rotate-token", "contoso", "--stage", "retire")
    assert code == 0, out
    assert fake.secrets[deploy.PRIMARY_SECRET] == (new, "primary")
    filler, role = fake.secrets[deploy.SECONDARY_SECRET]
    assert role == "disabled" and filler not in (new, "o" * 64)
    assert new not in out
    assert all(new not in " ".join(argv) for argv in fake.argvs)
    assert fake.restarts == 2


def test_retire_without_a_pending_token_changes_nothing(scim_stub: str) -> None:
    """Promoting the idle slot's unrevealed filler would lock Entra out."""
    state = {
        deploy.PRIMARY_SECRET: ("o" * 64, "primary"),
        deploy.SECONDARY_SECRET: ("f" * 64, "disabled"),
    }
    fake = FakeAz(scim_stub, state)
    with pytest.raises(SystemExit, match="--stage add first"):
        run(fake, "rotate-token", "contoso", "--stage", "retire")
    assert fake.secrets == state


def test_smoke_probe_rejects_a_wrong_token(scim_stub: str) -> None:
    ScimStub.accepted = {"right"}
    with pytest.raises(smoke.SmokeTestFailed, match="HTTP 401"):
        smoke.probe(scim_stub, "wrong")


def test_smoke_probe_rejects_a_non_empty_result(scim_stub: str) -> None:
    ScimStub.accepted, ScimStub.total_results = {"right"}, 1
    with pytest.raises(smoke.SmokeTestFailed, match="totalResults is 1"):
        smoke.probe(scim_stub, "right")


def test_smoke_wait_gives_up_after_its_timeout(scim_stub: str) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with pytest.raises(smoke.SmokeTestFailed):
        smoke.wait_until_ready(
            scim_stub, "wrong", timeout=0.3, interval=0.1, sleep=sleep, log=lambda _: None
        )
    assert waits  # it retried before giving up


class PublishFails(AcceptStoredToken):
    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        if list(argv[:5]) == ["az", "functionapp", "deployment", "source", "config-zip"]:
            self.argvs.append(list(argv))
            return 1, "", "Deployment failed"
        return super().__call__(argv)


def test_a_failed_publish_still_shows_the_stored_token(scim_stub: str) -> None:
    """The token is in Key Vault already; not showing it would force a rotation."""
    fake = PublishFails(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 1
    token, _ = fake.secrets[deploy.PRIMARY_SECRET]
    assert out.count(token) == 1
    assert "Smoke test" not in out


def test_ensure_token_fills_missing_secrets_and_restarts(scim_stub: str) -> None:
    """The azd hook: first run creates both secrets; a later run changes nothing but restarts."""
    fake = FakeAz(scim_stub)
    code, out = run(fake, "ensure-token", "contoso", "--resource-group", "rg-azd")
    assert code == 0, out
    token, _ = fake.secrets[deploy.PRIMARY_SECRET]
    assert f"Secret Token: {token}" in out
    host = urllib.parse.urlsplit(scim_stub).netloc
    assert f"Tenant URL:   https://{host}/scim/v2" in out  # from the app's defaultHostName
    before = dict(fake.secrets)
    code, out = run(fake, "ensure-token", "contoso", "--resource-group", "rg-azd")
    assert code == 0, out
    assert fake.secrets == before and "unchanged" in out
    assert fake.restarts == 2


def test_deploy_generates_the_graph_client_state_into_key_vault(scim_stub: str) -> None:
    """GRAPH_CLIENT_STATE is a Key Vault reference: the secret must exist before the app resolves
    it, holds a random value, and is never shown or put on a command line."""
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    state, role = fake.secrets[deploy.GRAPH_CLIENT_STATE_SECRET]
    assert role == "client-state" and len(state) == 64
    assert state not in out
    assert all(state not in " ".join(argv) for argv in fake.argvs)


def test_deploy_publishes_without_a_remote_build(scim_stub: str) -> None:
    """The wheels built and tested here are what runs: config-zip says --build-remote false."""
    fake = AcceptStoredToken(scim_stub)
    code, out = run(fake, "deploy", "contoso", "--location", "westeurope", "--tenant-id", TENANT)
    assert code == 0, out
    (publish,) = [
        a
        for a in fake.argvs
        if a[:5] == ["az", "functionapp", "deployment", "source", "config-zip"]
    ]
    assert publish[publish.index("--build-remote") + 1] == "false"


SUBSCRIPTION = f"/subscriptions/{TENANT}"  # FakeAz answers `az account show` with TENANT
GROUP = f"{SUBSCRIPTION}/resourceGroups/rg-scim-contoso"
#: Owner on the resource group only: the documented "pre-created resource group" set-up.
GROUP_OWNER_ONLY = {SUBSCRIPTION: [], GROUP: [{"actions": ["*"], "notActions": []}]}


def _ran(fake: FakeAz, *prefix: str) -> bool:
    return any(argv[: len(prefix)] == list(prefix) for argv in fake.argvs)


def test_teardown_without_a_subscription_role_deletes_nothing(scim_stub: str) -> None:
    """Purging the soft-deleted vault needs deletedVaults/purge/action at subscription scope;
    without it teardown stops before deleting the group, instead of half-tearing-down."""
    fake = FakeAz(scim_stub, permissions=GROUP_OWNER_ONLY)
    with pytest.raises(SystemExit) as stopped:
        run(fake, "teardown", "contoso", "--yes")
    message = str(stopped.value)
    assert "Microsoft.KeyVault/locations/deletedVaults/purge/action" in message
    assert "subscription" in message and "--keep-vault" in message
    assert "Nothing was changed" in message
    assert not _ran(fake, "az", "group", "delete") and not _ran(fake, "az", "keyvault", "purge")


def test_teardown_keep_vault_needs_only_the_group(scim_stub: str) -> None:
    fake = FakeAz(scim_stub, permissions=GROUP_OWNER_ONLY)
    code, out = run(fake, "teardown", "contoso", "--yes", "--keep-vault")
    assert code == 0, out
    assert _ran(fake, "az", "group", "delete") and not _ran(fake, "az", "keyvault", "purge")
    assert "soft-deleted" in out


def test_teardown_with_key_vault_contributor_on_the_subscription_is_refused(scim_stub: str) -> None:
    """Key Vault Contributor grants Microsoft.KeyVault/* but lists the purge in NotActions."""
    key_vault_contributor = {
        "actions": ["Microsoft.KeyVault/*", "Microsoft.Resources/deployments/*"],
        "notActions": ["Microsoft.KeyVault/locations/deletedVaults/purge/action"],
    }
    fake = FakeAz(
        scim_stub,
        permissions={**GROUP_OWNER_ONLY, SUBSCRIPTION: [key_vault_contributor]},
    )
    with pytest.raises(SystemExit, match="purge/action"):
        run(fake, "teardown", "contoso", "--yes")
    assert not _ran(fake, "az", "group", "delete")


def test_teardown_with_subscription_contributor_deletes_and_purges(scim_stub: str) -> None:
    contributor = {
        "actions": ["*"],
        "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write"],
    }
    fake = FakeAz(scim_stub, permissions={SUBSCRIPTION: [contributor], GROUP: [contributor]})
    code, out = run(fake, "teardown", "contoso", "--yes")
    assert code == 0, out
    assert _ran(fake, "az", "group", "delete") and _ran(fake, "az", "keyvault", "purge")


def test_graph_permissions_without_an_azure_role_is_refused_up_front(scim_stub: str) -> None:
    """A Privileged Role Administrator with no Azure role in the group would get
    AuthorizationFailed half-way; the tool says what is missing before doing anything."""
    fake = FakeAz(scim_stub, permissions={GROUP: []})
    with pytest.raises(SystemExit) as stopped:
        run(fake, "graph-permissions", "contoso")
    message = str(stopped.value)
    assert "Microsoft.Resources/deployments/write" in message and "Contributor" in message
    assert not _ran(fake, "az", "deployment", "group", "create")
    assert not _ran(fake, "az", "resource", "list")


def test_graph_permissions_with_reader_only_is_refused(scim_stub: str) -> None:
    fake = FakeAz(scim_stub, permissions={GROUP: [{"actions": ["*/read"], "notActions": []}]})
    with pytest.raises(SystemExit, match="deployments/write"):
        run(fake, "graph-permissions", "contoso")
    assert not _ran(fake, "az", "deployment", "group", "create")


def test_graph_permissions_with_contributor_deploys(scim_stub: str) -> None:
    fake = FakeAz(scim_stub, permissions={GROUP: [{"actions": ["*"], "notActions": []}]})
    fake.permissions[GROUP][0]["notActions"] = ["Microsoft.Authorization/*/Write"]
    code, out = run(fake, "graph-permissions", "contoso")
    assert code == 0, out
    assert _ran(fake, "az", "deployment", "group", "create")


@pytest.mark.parametrize("attribute", ["externalId", "userName"], ids=["recommended", "default"])
def test_smoke_probe_passes_against_the_app_itself(host: tuple[Any, str], attribute: str) -> None:
    """The probe's queries are the ones the real app answers like Entra expects (Learn, "Tutorial:
    Develop and plan provisioning for a SCIM endpoint": 200 with an empty ListResponse), served
    by function_app's own triggers through the local host."""
    local, token = host
    smoke.probe(local.base_url + "/scim/v2", token, user_attribute=attribute)
    with pytest.raises(smoke.SmokeTestFailed, match="HTTP 401"):
        smoke.probe(local.base_url + "/scim/v2", "not-the-token")
