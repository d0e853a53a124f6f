"""Wiring: the timer and webhook bindings, the time budget against host.json, the import
rules (msgraph-sdk and azure-identity only on the timer path), credential selection."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graph_enrich.budget import NOTIFIED_BUDGET_SECONDS, RUN_BUDGET_SECONDS
from graph_enrich.credentials import build_credential
from graph_enrich.errors import ConfigurationError
from graph_enrich.sync import LEASE_MARGIN_SECONDS
from scim_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = sorted((ROOT / "graph_enrich").glob("*.py"))


def _bindings() -> dict[str, dict[str, object]]:
    """The app's functions as the worker indexes them, from a fresh process (indexing twice in
    this one would disturb the session's host)."""
    code = (
        "import json, function_app\n"
        "print(json.dumps({f.get_function_name(): f.get_trigger().get_dict_repr()\n"
        "                  for f in function_app.app.get_functions()}, default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_timer_and_webhook_bindings() -> None:
    """`graph_sync` runs on %SYNC_SCHEDULE% (an app setting), never on startup; the webhook is
    an anonymous POST route outside /scim/v2."""
    functions = _bindings()
    timer = functions["graph_sync"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%SYNC_SCHEDULE%"
    assert timer["runOnStartup"] is False
    hook = functions["graph_notifications"]
    assert hook["route"] == "graph/notifications" and "POST" in str(hook["methods"])
    assert "ANONYMOUS" in str(hook["authLevel"]).upper()


def test_default_schedule_is_every_15_minutes() -> None:
    assert Settings().sync_schedule == "0 */15 * * * *"


def test_the_budget_fits_the_function_timeout() -> None:
    """A run plans to stop well before host.json's functionTimeout kills it, and its lease
    outlives it (so a killed run blocks the cursor no longer than that)."""
    hours, minutes, seconds = json.loads((ROOT / "host.json").read_text())["functionTimeout"].split(
        ":"
    )
    timeout = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    assert timeout >= RUN_BUDGET_SECONDS + 45
    assert NOTIFIED_BUDGET_SECONDS < RUN_BUDGET_SECONDS
    assert timeout <= RUN_BUDGET_SECONDS + LEASE_MARGIN_SECONDS


def test_importing_the_package_loads_no_sdk() -> None:
    """The webhook imports graph_enrich on the HTTP path: it must stay light."""
    code = (
        "import sys, graph_enrich, graph_enrich.notifications;"
        "bad = [m for m in sys.modules if m.startswith(('msgraph', 'azure.identity',"
        " 'kiota', 'httpx'))]; print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", PACKAGE, ids=[p.name for p in PACKAGE])
def test_graph_enrich_never_imports_function_app(path: Path) -> None:
    """DESIGN.md: function_app -> scim_core <- graph_enrich; SDK imports only inside functions
    (graph.py, credentials.py), never at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.startswith(("function_app", "devhost", "tests"))}
    top_level = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top_level |= {n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert not {
        m for m in top_level if m.startswith(("msgraph", "kiota", "azure.identity", "httpx"))
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"GRAPH_TENANT_ID": "t", "GRAPH_CLIENT_ID": "c", "GRAPH_CLIENT_SECRET": "s"},
            "ClientSecretCredential",
        ),
        ({"AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001"}, "ManagedIdentityCredential"),
        ({}, "DefaultAzureCredential"),
    ],
    ids=["client-secret", "managed-identity", "developer"],
)
def test_credential_selection(values: dict[str, str], expected: str) -> None:
    """Client secret when configured, else the user-assigned managed identity (Azure), else
    DefaultAzureCredential (a developer's machine). Building one makes no network call."""
    credential = build_credential(Settings.from_env(values))
    assert type(credential).__name__ == expected
    assert build_credential(Settings.from_env(values)) is credential  # token cache kept


def test_unresolved_key_vault_secret_is_a_configuration_error() -> None:
    values = {
        "GRAPH_TENANT_ID": "t",
        "GRAPH_CLIENT_ID": "c",
        "GRAPH_CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x)",
    }
    with pytest.raises(ConfigurationError, match="Key Vault"):
        build_credential(Settings.from_env(values))
