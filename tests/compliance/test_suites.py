"""The public compliance suites, run against the local host serving ``function_app``:

- ``scim2 test`` (scim2-cli driving scim2-tester: every check it has),
- ``scim-sanity probe`` (strict mode, every phase that applies to Users and Groups).

Any failed check fails the build; the suites' own output is shown on failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from devhost.server import LocalHost

BIN = Path(sys.executable).parent


def _run(args: list[str], env_extra: dict[str, str] | None = None) -> tuple[int, str]:
    env = {**os.environ, **(env_extra or {})}
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL
    )
    return done.returncode, done.stdout + done.stderr


def test_scim2_tester_reports_no_failure(host: tuple[LocalHost, str]) -> None:
    """scim2-tester: discovery, CRUD, attribute add/replace/remove on every attribute,
    filtering, projection, search — zero ERROR/CRITICAL results."""
    local, token = host
    # The token goes through the environment variable scim2-cli reads, not the command line.
    rc, out = _run(
        [str(BIN / "scim2"), "--url", f"{local.base_url}/scim/v2", "test"],
        {"SCIM_CLI_HEADERS": f"Authorization: Bearer {token}"},
    )
    failures = [line for line in out.splitlines() if re.match(r"^(ERROR|CRITICAL)\b", line)]
    successes = [line for line in out.splitlines() if line.startswith("SUCCESS")]
    assert rc == 0 and not failures, out
    assert len(successes) > 100, out  # the suite really ran its checks


def test_scim_sanity_probe_passes(host: tuple[LocalHost, str]) -> None:
    """scim-sanity probe (strict): discovery, user and group lifecycles, search, errors."""
    local, token = host
    rc, out = _run(
        [
            str(BIN / "scim-sanity"),
            "probe",
            f"{local.base_url}/scim/v2",
            "--token",
            token,
            "--i-accept-side-effects",
        ]
    )
    assert rc == 0 and "All tests passed" in out, out
    assert "[FAIL]" not in out and "[ERROR]" not in out, out
    passed = re.search(r"\b(\d+) passed\b", out)
    assert passed and int(passed.group(1)) >= 25, out  # all User and Group phases ran
    assert not re.search(r"\b[1-9]\d* failed\b", out), out
