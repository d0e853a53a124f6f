"""The processes a benchmark talks to, all on 127.0.0.1: Azurite, our app on the local
Functions host, and the peer ``scim2-server``.

Azurite runs in memory (``--inMemoryPersistence``: LokiJS's file persistence re-serialises the
whole database every 5 s, which stalls the single-threaded emulator at 100k rows) and, unless
``indexed=False``, with ``azurite_index.js`` preloaded so that point reads and RowKey ranges use
the RowKey index as Azure Table Storage does (that file says why; bench/README.md has stock
Azurite's numbers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from devhost.azurite import HOST, Azurite, free_port

ROOT = Path(__file__).resolve().parents[1]
SHIM = Path(__file__).resolve().with_name("azurite_index.js")
START_TIMEOUT = 60.0


class BenchAzurite(Azurite):
    """Azurite's Table service, in memory, with or without the index shim."""

    def __init__(self, location: Path, *, indexed: bool = True) -> None:
        super().__init__(ROOT, location)
        self.indexed = indexed

    def _node_env(self) -> dict[str, str]:
        """Node's options and any further environment (bench.growth_probe adds its timing)."""
        # 100k users with their index and membership rows need more than Node's default heap.
        node_options = ["--max-old-space-size=6144"]
        if self.indexed:
            node_options.append(f"--require={SHIM}")
        return {"NODE_OPTIONS": " ".join(node_options)}

    def _launch(self, launcher: Path) -> None:
        command = [
            str(launcher),
            "--tableHost",
            HOST,
            "--tablePort",
            str(self.port),
            "--inMemoryPersistence",  # instead of --location: the two exclude each other
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
        ]
        env = {**os.environ, **self._node_env()}
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


class _Served:
    """A server subprocess that prints a line containing its URL once it listens."""

    marker = ""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def url_from(self, line: str) -> str:
        raise NotImplementedError

    def start(self) -> Self:
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if self.marker in line:
                self.base_url = self.url_from(line)
                # Keep draining stdout in the background would need a thread; the servers
                # print nothing more at the log levels used here.
                return self
        self.stop()
        raise RuntimeError(f"{' '.join(self.command())} did not start")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class OurHost(_Served):
    """``python -m devhost``: function_app's own triggers over Azurite, in its own process."""

    marker = "Listening on "

    def __init__(self, connection_string: str, token: str, state_dir: Path) -> None:
        super().__init__()
        self.connection_string, self.token, self.state_dir = connection_string, token, state_dir

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.host",
            "--port",
            "0",
            "--state-dir",
            str(self.state_dir),
            "--log-level",
            "WARNING",
        ]

    def env(self) -> dict[str, str]:
        # This machine sets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (a sandbox CA file), a Function
        # App does not; with them requests stats the bundle on every storage request. Azurite
        # is plain HTTP, so they are dropped, as in Azure.
        env = {
            k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
        }
        return {
            **env,
            "TABLES_CONNECTION_STRING": self.connection_string,
            "SCIM_BEARER_TOKEN": self.token,
        }

    def url_from(self, line: str) -> str:
        return line.split(self.marker, 1)[1].strip() + "/scim/v2"


class PeerServer(_Served):
    """The ``scim2-server`` command (its threaded wsgiref server over InMemoryStorage)."""

    marker = "Serving SCIM on "

    def __init__(self, token: str, *, tuned: bool = False) -> None:
        super().__init__()
        self.token, self.tuned = token, tuned
        self.port = free_port()

    def command(self) -> list[str]:
        if self.tuned:  # same app and code path, listen backlog 128 (bench/peer_tuned.py)
            program = [sys.executable, "-m", "bench.peer_tuned"]
        else:
            program = [str(Path(sys.executable).with_name("scim2-server"))]
        return [*program, "--port", str(self.port), "--bearer-token", self.token]

    def url_from(self, line: str) -> str:
        return line.split(self.marker, 1)[1].strip()
