"""``python -m devhost``: run the Function App locally over Azurite (the ``make run`` entry).

    python -m devhost                          # serve on 127.0.0.1:$PORT (default 7071)
    python -m devhost --port 0                 # any free port; read it from "Listening on <url>"
    python -m devhost --fire-timer graph_sync  # run a timer function once and exit (make sync)

Storage: unless ``TABLES_CONNECTION_STRING`` is already set, Azurite is started with its data in
``.local/azurite`` (kept across restarts) and the app is pointed at it. The bearer token comes from
``SCIM_BEARER_TOKEN`` or else is generated once and kept in ``.local/token``, so the value pasted
into Entra stays valid across restarts. The token is printed once, to the operator's terminal, and
only when this program chose it; it is never logged.

Stopping: Ctrl-C (SIGINT) and SIGTERM both stop the host gracefully, in this order: no new
requests, those in progress finish, the app is released, then Azurite is sent SIGINT and waited
for while it saves its database (``devhost.azurite``). A signal during start-up undoes what has
started; a second signal while stopping is ignored, so it cannot cut the saving short.

The running host writes a per-run admin key to ``.local/devhost.key`` (owner-only); ``--fire-timer``
sends it in ``x-functions-key``, and ``POST /admin/functions/<name>`` refuses calls without it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from devhost.azurite import Azurite
from devhost.functions import DevHostError, FunctionHost
from devhost.outcome import report as timer_outcome
from devhost.routes import with_prefix
from devhost.server import LocalHost, applied_env

ROOT = Path(__file__).resolve().parent.parent
TOKEN_SETTING = "SCIM_BEARER_TOKEN"
#: The running host's admin key, under the state directory (``.local/``).
KEY_FILE = "devhost.key"
STORAGE_SETTING = "TABLES_CONNECTION_STRING"
#: What `--fire-timer` needs to report a running host's timer outcome (in the state dir).
APP_FILE = "devhost.app"


log = logging.getLogger("devhost")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = _StopSignals()
    try:
        return _run(args, stop)
    except KeyboardInterrupt:
        # A signal during a one-off timer run: what had started has been undone.
        return stop.exit_code


def _run(args: argparse.Namespace, stop: _StopSignals) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "DEBUG":
        # azure-core logs every storage request and response at INFO, drowning the invocations.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel("WARNING")
    state: Path = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    if args.fire_timer:
        # A host already serving from this state directory owns its Azurite data: a second
        # Azurite on the same files would corrupt them, so ask that host to run the timer.
        outcome = _fire_on_running_host(state, args.fire_timer)
        if outcome is not None:
            return outcome
    with ExitStack() as resources:
        env: dict[str, str] = {}
        storage_note = f"{STORAGE_SETTING} from the environment"
        if not os.environ.get(STORAGE_SETTING):
            azurite = resources.enter_context(Azurite(ROOT, state / "azurite"))
            env[STORAGE_SETTING] = azurite.connection_string
            storage_note = f"Azurite {azurite.endpoint}, data in {state / 'azurite'}"
        if stop.requested:
            return stop.exit_code  # a signal during start-up: undo what has started
        token, chosen_here = _bearer_token(state)
        env[TOKEN_SETTING] = token
        if args.fire_timer:
            with stop.interruptible():
                return _fire_here(args.module, args.fire_timer, env)
        host = resources.enter_context(LocalHost(args.module, port=args.port, env=env))
        if stop.requested:
            return stop.exit_code
        key_file = state / KEY_FILE
        _write_owner_only(key_file, host.admin_key)
        resources.callback(key_file.unlink, missing_ok=True)
        url_file = state / "devhost.url"
        url_file.write_text(host.base_url, encoding="utf-8")
        resources.callback(url_file.unlink, missing_ok=True)
        # `--fire-timer` on this host reads the run's outcome: it needs the app module and, for
        # an Azurite started here, its connection string (the well-known development key; a
        # connection string from the environment is never written down). Owner-only anyway.
        app_file = state / APP_FILE
        served = {"module": args.module, STORAGE_SETTING: env.get(STORAGE_SETTING)}
        _write_private(app_file, json.dumps({k: v for k, v in served.items() if v}))
        resources.callback(app_file.unlink, missing_ok=True)
        assert host.functions is not None
        tenant_url = f"{host.base_url}/{with_prefix(host.functions.route_prefix, 'scim/v2')}"
        shown = token if chosen_here else f"(the value of ${TOKEN_SETTING})"
        # Entra's provisioning service calls the Tenant URL from Microsoft's cloud over HTTPS, so
        # this loopback URL is for local clients; a tunnel publishes it (docs/entra-setup.md).
        print(
            f"Listening on {host.base_url}\n"
            f"  Tenant URL:   {tenant_url}  (local clients: curl, tests, SCIM tools)\n"
            f"  Secret Token: {shown}\n"
            f"  Storage:      {storage_note}\n"
            "  Entra needs a public HTTPS Tenant URL: to try real Entra against this host, run a\n"
            f"  tunnel (e.g. 'devtunnel host -p {host.port} --allow-anonymous') and paste\n"
            "  https://<tunnel host>/scim/v2?aadOptscim062020 into Entra; see\n"
            "  docs/entra-setup.md#try-real-entra-against-a-local-instance-before-deploying\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        stop.wait()
        log.info("Stopping: finishing requests in progress, then saving Azurite's data")
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--module", default="function_app", help="app module (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "7071")),
        help="port on 127.0.0.1; 0 picks a free one (default: $PORT or 7071)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".local",
        help="Azurite data, the stored token and the running host's URL (default: .local/)",
    )
    parser.add_argument("--fire-timer", metavar="NAME", help="run this timer function once, exit")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser.parse_args(argv)


def _bearer_token(state: Path) -> tuple[str, bool]:
    """The token, and whether this program chose it (then it is the operator's to copy)."""
    from_env = os.environ.get(TOKEN_SETTING)
    if from_env:
        return from_env, False
    path = state / "token"
    if path.exists() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip(), True
    token = secrets.token_urlsafe(32)
    state.mkdir(parents=True, exist_ok=True)
    # Owner-only from the first byte: the token is a credential.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token, True


def _fire_on_running_host(state: Path, name: str) -> int | None:
    """Exit code after the running host ran the timer; ``None`` when no host is running."""
    url_file = state / "devhost.url"
    if not url_file.exists():
        return None
    url = f"{url_file.read_text(encoding='utf-8').strip()}/admin/functions/{name}"
    request = urllib.request.Request(url, data=b'{"input": ""}', method="POST")
    request.add_header("Content-Type", "application/json")
    key_file = state / KEY_FILE
    if key_file.exists():
        request.add_header("x-functions-key", key_file.read_text(encoding="utf-8").strip())
    started = _now()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            app_file = state / APP_FILE
            served = json.loads(app_file.read_text(encoding="utf-8")) if app_file.exists() else {}
            env = {k: v for k, v in served.items() if k == STORAGE_SETTING}
            module = str(served.get("module", ""))
            ran = f"ran on the running host ({response.status})"
            return _report(module, name, env, started, ran)
    except urllib.error.HTTPError as exc:
        problem = "is not a timer function" if exc.code == 404 else "failed: see the host's log"
        print(f"{name} {problem}", file=sys.stderr, flush=True)
        return 1
    except OSError:
        return None  # a stale file from a host that did not stop cleanly: run it here instead


def _fire_here(module: str, name: str, env: dict[str, str]) -> int:
    started = _now()
    with applied_env(env):
        functions = FunctionHost(module)
        try:
            functions.fire_timer(name)
        except DevHostError as exc:
            print(exc, file=sys.stderr, flush=True)
            return 2
        except Exception:
            return 1  # the traceback is already logged with the invocation id
        finally:
            functions.close()
    return _report(module, name, env, started, "ran")


def _report(module: str, name: str, env: dict[str, str], started: datetime, ran: str) -> int:
    """Print what the run achieved (its status record), not only that it ran; the exit code
    says whether it failed (a Graph sync returns normally after recording its error)."""
    outcome = timer_outcome(module, name, env, started)
    if outcome is None:
        print(f"{name} {ran}", flush=True)
        return 0
    print(outcome.message, file=sys.stderr if outcome.code else sys.stdout, flush=True)
    return outcome.code


def _now() -> datetime:
    # The status record stamps milliseconds: a second of slack keeps this run's record "after".
    return datetime.now(UTC) - timedelta(seconds=1)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text + "\n")


def _write_owner_only(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read (any old file is replaced)."""
    path.unlink(missing_ok=True)  # O_CREAT keeps an existing file's mode, so start afresh
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text + "\n")


class _StopSignals:
    """SIGINT and SIGTERM, handled the same way from the first line of ``main``.

    The first signal only records the request: start-up checks it between steps and unwinds what
    has started (an exception raised at an arbitrary point could land between Azurite's launch
    and its registration for stopping, and Azurite runs in its own session, so it would outlive
    us with its last writes unsaved); ``wait()`` returns. Only around a one-off timer run
    (``interruptible()``) does it raise KeyboardInterrupt, to cut the run short. Later signals are
    ignored: the shutdown is bounded by its own timeouts, and a second Ctrl-C must not interrupt
    Azurite while it saves.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._interruptible = False
        self.signum: int | None = None  # the first signal received
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def exit_code(self) -> int:
        # The shell's convention for "ended by signal N".
        return 128 + (self.signum or signal.SIGINT)

    def wait(self) -> None:
        self._requested.wait()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        if self.requested:
            raise KeyboardInterrupt
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._requested.is_set():
            log.warning("Already stopping; %s ignored", signal.Signals(signum).name)
            return
        self.signum = signum
        self._requested.set()
        if self._interruptible:
            raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
