"""A threaded HTTP server run from a daemon thread: the socket, the thread and their shutdown.

The job endpoint (``job_server.py``) and the probe endpoint (``probes.py``) differ only in their
request handler; both serve from here.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["ThreadedHttpServer"]


class ThreadedHttpServer:
    """Serves ``handler`` on ``host:port`` from a daemon thread named ``name`` until ``close()``.

    The port is bound at construction (so ``port`` is known before ``start()``, useful with 0).
    A client silent for ``request_timeout`` seconds loses its connection: each one holds a
    thread, and anything in the cluster can connect.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
        name: str,
        request_timeout: float = 30.0,
    ) -> None:
        timed = type(handler.__name__, (handler,), {"timeout": request_timeout})
        self._server = ThreadingHTTPServer((host, port), timed)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=name,
            daemon=True,
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
