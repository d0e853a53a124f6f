"""``python -m bench.host``: ``python -m devhost`` with Nagle's algorithm off on its connections.

devhost's HTTP handler sends a response in two writes (status line and headers, then the body).
With Nagle's algorithm on, the second write waits for the client's delayed ACK of the first:
+40 ms on every response of a keep-alive connection (measured here: ``GET
/ServiceProviderConfig`` 44 ms -> 0.5 ms at the client). The Functions host that serves the app
in Azure (Kestrel) does not behave like that, so the benchmark serves the app with
``TCP_NODELAY``, as socketserver offers it (``disable_nagle_algorithm``). The same one-line
setting on ``devhost.server._Handler`` would take the 40 ms out of ``make run`` and the HTTP tests;
bench/README.md reports it.
"""

from __future__ import annotations

import runpy
import sys


def no_nagle() -> None:
    from devhost.server import _Handler

    _Handler.disable_nagle_algorithm = True


if __name__ == "__main__":
    no_nagle()
    sys.argv[0] = "devhost"
    runpy.run_module("devhost", run_name="__main__", alter_sys=True)
