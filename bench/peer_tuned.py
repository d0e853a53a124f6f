"""``python -m bench.peer_tuned``: the ``scim2-server`` command with a listen backlog of 128.

The command serves its WSGI app on wsgiref's ``ThreadingWSGIServer``, whose listen backlog is
socketserver's default of 5, and answers HTTP/1.0 (a new connection per request). At
concurrency 8 the backlog overflows now and then, the kernel drops a SYN and the client retries
after 1 s: the peer's p99 is ~1 s whatever the operation. The benchmark reports the peer as
shipped (the comparison the targets use) and, for a fair picture, this variant: same app, same
code path, only the backlog raised.
"""

from __future__ import annotations

from scim2_server.testserver import cli

if __name__ == "__main__":
    cli.ThreadingWSGIServer.request_queue_size = 128
    cli.main()
