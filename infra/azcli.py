"""The one seam between the deploy tool and the Azure CLI.

Every ``az`` call goes through :class:`AzureCli`, which echoes the command before running it and,
in dry-run mode, only echoes it. Secret values never appear in a command line: they are written to a
private temporary file that ``az keyvault secret set --file`` reads, and commands that would print
a secret run with their output captured, never echoed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

#: What dry-run shows where a generated secret would go.
GENERATED = "<generated>"

#: Seconds to keep retrying a data-plane call that Azure RBAC still refuses (new role assignments
#: take a few minutes to reach Key Vault).
RBAC_PROPAGATION_TIMEOUT = 300.0


class AzError(RuntimeError):
    """An ``az`` command failed."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{shlex.join(argv)} failed ({returncode}): {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


#: Runs one command line and returns (exit code, stdout, stderr). Tests pass a fake.
Executor = Callable[[Sequence[str]], "tuple[int, str, str]"]


def _run_process(argv: Sequence[str]) -> tuple[int, str, str]:
    executable = shutil.which(argv[0])
    if executable is None:
        raise SystemExit(
            f"'{argv[0]}' was not found on PATH (install the Azure CLI: https://aka.ms/azcli)."
        )
    done = subprocess.run([executable, *argv[1:]], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


class AzureCli:
    """Runs (or, in dry-run, only prints) ``az`` commands."""

    def __init__(
        self,
        *,
        dry_run: bool,
        subscription: str | None = None,
        out: TextIO = sys.stdout,
        executor: Executor = _run_process,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dry_run = dry_run
        self.subscription = subscription
        self.out = out
        self._execute = executor
        self._sleep = sleep

    # --- running ------------------------------------------------------------------------------

    def echo(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def run(self, command: str, *, arm: bool = True, placeholder: str = "", **values: str) -> str:
        """Run ``az <command>`` and return its stdout (``placeholder`` in dry-run).

        ``command`` is split on spaces first and its ``{name}`` fields filled from ``values``
        afterwards, so a value may contain spaces (a JMESPath query) but never adds arguments.
        ``arm`` commands get ``--subscription`` when one was chosen; Microsoft Graph commands
        (``az ad ...``) do not take it.
        """
        argv = ["az", *(part.format(**values) for part in command.split())]
        if arm and self.subscription:
            argv += ["--subscription", self.subscription]
        self.echo(f"+ {shlex.join(argv)}")
        if self.dry_run:
            return placeholder
        code, stdout, stderr = self._execute(argv)
        if code != 0:
            raise AzError(argv, code, stderr)
        return stdout.strip()

    def run_json(
        self, command: str, *, arm: bool = True, placeholder: object = None, **values: str
    ) -> Any:
        """Run a command with ``--output json`` and decode its stdout (``arm``: as in run)."""
        text = self.run(f"{command} --output json", arm=arm, placeholder="", **values)
        if self.dry_run:
            return placeholder
        return json.loads(text) if text else None

    def run_external(self, argv: Sequence[str]) -> None:
        """Run a non-az command (pip), echoed the same way."""
        self.echo(f"+ {shlex.join(argv)}")
        if self.dry_run:
            return
        code, _, stderr = self._execute(list(argv))
        if code != 0:
            raise AzError(argv, code, stderr)

    def until_rbac_allows(self, call: Callable[[], Any]) -> Any:
        """Retry ``call`` while Key Vault answers 403: role assignments take minutes to apply."""
        deadline = time.monotonic() + RBAC_PROPAGATION_TIMEOUT
        while True:
            try:
                return call()
            except AzError as exc:
                if "Forbidden" not in exc.stderr or time.monotonic() > deadline:
                    raise
                self.echo(
                    "  (Key Vault still denies access: waiting for the role assignment to apply)"
                )
                self._sleep(15)

    # --- secrets ------------------------------------------------------------------------------

    def set_secret(self, vault: str, name: str, value: str, *, role: str) -> None:
        """Store ``value`` as secret ``name``, passed in a private temp file, never in argv.

        ``role`` is kept as the secret's ``role`` tag (primary, pending, disabled) so a rotation can
        tell a real pending token from the unrevealed filler of an idle secondary slot.
        """
        command = (
            "keyvault secret set --vault-name {vault} --name {name} --file {path}"
            " --encoding utf-8 --tags role={role} --output none"
        )
        if self.dry_run:
            self.run(command, vault=vault, name=name, path="<temp file>", role=role)
            return
        fd, path = tempfile.mkstemp(prefix="scim-secret-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600, owner only
                handle.write(value)
            self.until_rbac_allows(
                lambda: self.run(command, vault=vault, name=name, path=path, role=role)
            )
        finally:
            Path(path).unlink(missing_ok=True)

    def get_secret(self, vault: str, name: str) -> tuple[str, str]:
        """Return (value, role tag) of a secret. The output is captured, never echoed."""
        found = self.until_rbac_allows(
            lambda: self.run_json(
                "keyvault secret show --vault-name {vault} --name {name} --query {query}",
                vault=vault,
                name=name,
                query="{value: value, role: tags.role}",
                placeholder={"value": GENERATED, "role": "pending"},
            )
        )
        return found["value"], found.get("role") or ""
