"""``python -m infra.deploy status --all``: one table of every instance's health, read with the
consultant's login: the real app's status route (function_app's own trigger, served by the
local host over Azurite) with the token from the (fake) Key Vault, token ages from Key Vault's
metadata, and the workbook link. `az` is the fake of test_deploy_tokens.py."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra import deploy, fleet
from tests.infra.test_deploy_dry_run import commands, dry_run
from tests.infra.test_deploy_tokens import TENANT, FakeAz, run


@pytest.fixture
def app(host: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> FakeAz:
    """A fake az whose instance is the local host (plain http on loopback)."""
    local, token = host
    monkeypatch.setattr(fleet, "STATUS_SCHEME", "http")
    fake = FakeAz(local.base_url + "/scim/v2")
    fake.secrets = {
        deploy.PRIMARY_SECRET: (token, "primary"),
        deploy.SECONDARY_SECRET: ("filler-" + "x" * 57, "disabled"),
    }
    now = datetime.now(UTC)
    fake.secret_updated = {
        deploy.PRIMARY_SECRET: (now - timedelta(days=200)).isoformat(),
        deploy.SECONDARY_SECRET: (now - timedelta(days=3)).isoformat(),
    }
    return fake


def table_rows(out: str) -> list[list[str]]:
    return [
        [cell for cell in line.split("  ") if cell]
        for line in out.splitlines()
        if not line.startswith(("+", "(", "workbook "))
    ]


def test_status_all_prints_one_row_per_instance_and_the_workbook_links(app: FakeAz) -> None:
    code, out = run(app, "status", "--all")
    assert code == 0, out
    header, *rows = table_rows(out)
    assert header[:3] == ["customer", "requests 24h", "errors 24h"]
    by_customer = {row[0].strip(): [c.strip() for c in row] for row in rows}
    assert set(by_customer) == {"contoso", "azdco"}
    contoso = by_customer["contoso"]
    assert contoso[7] == "200d/3d"
    assert contoso[8] == "token 200d old: rotate-token"
    assert contoso[1].isdigit()  # the app's own 24-hour count
    assert contoso[4].split()[0] in ("never", "complete", "partial", "failed")
    link = f"https://portal.azure.com/#@{TENANT}/resource{app.workbook_id}/workbook"
    assert f"workbook contoso: {link}" in out


def test_status_reads_the_route_with_the_token_and_never_prints_it(
    app: FakeAz, host: tuple[Any, str]
) -> None:
    _, token = host
    code, out = run(app, "status", "contoso")
    assert code == 0, out
    assert token not in out
    assert all(token not in " ".join(argv) for argv in app.argvs)
    (row,) = table_rows(out)[1:]
    assert row[0].strip() == "contoso" and "HTTP" not in out


def test_an_unreachable_instance_is_a_row_not_a_crash(
    app: FakeAz, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(url: str, token: str, timeout: float = 30.0) -> dict[str, Any]:
        host = urllib.parse.urlsplit(url).netloc
        raise RuntimeError(f"status route unreachable: {host}")

    monkeypatch.setattr(fleet, "fetch_status", refuse)
    code, out = run(app, "status", "contoso")
    assert code == 0, out
    assert "status route unreachable" in out


def test_status_needs_a_customer_or_all() -> None:
    done = dry_run("status")
    assert done.returncode == 1 and "name one customer, or --all" in done.stderr


def test_status_all_dry_run_lists_then_reads_key_vault_metadata() -> None:
    done = dry_run("status", "--all")
    assert done.returncode == 0, done.stderr
    lines = [c.replace("'", "") for c in commands(done.stdout)]
    assert lines[0].startswith("az account show")
    assert any(c.startswith("az group list --tag scim-product=scim-func") for c in lines)
