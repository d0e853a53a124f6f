"""Install and run Azurite's Table service for local development and tests.

Azurite (npm ``azurite``, pinned to 3.35.0 in ``package.json`` because 3.36+ needs Node 21) is the
official Azure Storage emulator. It is always started bound to 127.0.0.1 and with
``--disableTelemetry``: without that flag it tries to reach Microsoft's telemetry hosts, and tests
here may only talk to loopback.

    with Azurite(root, location=tmp_path) as azurite:
        client = TableServiceClient.from_connection_string(azurite.connection_string)
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"

#: Azurite's fixed development account and its well-known, public key (documented by Microsoft;
#: not a secret: https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

START_TIMEOUT = 30.0
#: How long stop() waits for Azurite to save its database and exit after SIGINT.
STOP_TIMEOUT = 15.0

log = logging.getLogger("devhost")


class AzuriteError(RuntimeError):
    """Azurite could not be installed or started."""


def ensure_installed(root: Path) -> Path:
    """Return the ``azurite-table`` launcher under ``root``, running ``npm ci`` first if needed."""
    launcher = root / "node_modules" / ".bin" / "azurite-table"
    if launcher.exists():
        return launcher
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError("npm not found: install Node.js 20 to run Azurite")
    # `npm ci` installs exactly the lock file; `npm install` is the fallback when the lock file is
    # missing or out of step with package.json.
    for args in (["ci"], ["install"]):
        done = subprocess.run(
            [npm, *args, "--no-audit", "--no-fund"],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 and launcher.exists():
            return launcher
    raise AzuriteError(
        f"npm could not install Azurite in {root}:\n{_tail(done.stderr + done.stdout)}"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Azurite:
    """A running Azurite Table service (a context manager; ``start()``/``stop()`` also work)."""

    def __init__(
        self, root: Path, location: Path, port: int = 0, debug_log: Path | None = None
    ) -> None:
        self.root = root
        self.location = location
        self.port = port
        self.debug_log = debug_log
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = location / "azurite-table.out"

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={self.endpoint};"
        )

    def start(self) -> Self:
        if self._process is not None:
            raise AzuriteError("Azurite is already running")
        launcher = ensure_installed(self.root)
        self.location.mkdir(parents=True, exist_ok=True)
        pick_port = self.port == 0
        for _attempt in range(3):
            if pick_port:
                self.port = free_port()
            self._launch(launcher)
            try:
                self._wait_until_started()
                return self
            except AzuriteError:
                # A port picked free a moment ago can be taken by a parallel test run: try another.
                if not (pick_port and "EADDRINUSE" in self.log_tail()):
                    raise
            except BaseException:
                # Interrupted while waiting (Ctrl-C, SIGTERM during `make run`'s start-up): the
                # caller never gets an object to stop, and Azurite runs in its own session, so
                # it would outlive us.
                self.stop()
                raise
        raise AzuriteError(f"Azurite found no free port:\n{self.log_tail()}")

    def _launch(self, launcher: Path) -> None:
        command = [
            str(launcher),
            "--tableHost",
            HOST,
            "--tablePort",
            str(self.port),
            "--location",
            str(self.location),
            "--disableTelemetry",
            "--skipApiVersionCheck",  # the Python SDK may be newer than the emulator
            "--loose",
        ]
        if self.debug_log is not None:
            command += ["--debug", str(self.debug_log)]
        with self._log_path.open("wb") as log:
            # A new session makes Azurite the leader of its own process group, so stop() can end
            # the launcher and the node process together without touching anything else.
            self._process = subprocess.Popen(
                command,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_until_started(self) -> None:
        """Wait for Azurite's own "successfully started" line, then for the port to answer: a
        connection alone could reach some other process that took the port first."""
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise AzuriteError(
                    f"Azurite exited during start-up (port {self.port}):\n{self.log_tail()}"
                )
            if "successfully started" in self.log_tail():
                try:
                    with socket.create_connection((HOST, self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise AzuriteError(
            f"Azurite did not start on {HOST}:{self.port} within {START_TIMEOUT:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return _tail(self._log_path.read_text(errors="replace"), lines)
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            # SIGINT, once: Azurite's table service handles only SIGINT (`process.once`), and only
            # then saves its LokiJS database to disk; SIGTERM kills it with recent writes unsaved.
            # It runs in its own session, so a terminal's Ctrl-C never reaches it twice.
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning(
                "Azurite did not stop within %.0f s of SIGINT: killed; writes it acknowledged "
                "in its last seconds may be lost",
                STOP_TIMEOUT,
            )
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])
