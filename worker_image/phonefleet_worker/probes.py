"""The probe endpoint: ``/readyz`` and ``/livez`` for the kubelet, served from a daemon thread.

``/readyz`` answers 200 while the session is open (APPIUM_READY, IDLE, JOB_RUNNING) and 503
otherwise; ``/livez`` answers 200 while the main loop keeps turning and 503 once it has been
stuck longer than the liveness timeout. Both bodies are one line of plain text. ``/metrics``
serves the worker's Prometheus metrics (``metrics.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

from phonefleet_worker import metrics
from phonefleet_worker.http_thread import ThreadedHttpServer

__all__ = ["ProbeServer"]

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]
"""Answers (healthy, one line saying why)."""


class ProbeServer(ThreadedHttpServer):
    """Serves the probes on ``host:port`` until ``close()``."""

    def __init__(self, *, host: str, port: int, readiness: Check, liveness: Check) -> None:
        checks = {"/readyz": readiness, "/livez": liveness}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(HTTPStatus.OK, *metrics.exposition())
                    return
                check = checks.get(path)
                if check is None:
                    self._answer(HTTPStatus.NOT_FOUND, "not found")
                    return
                healthy, why = check()
                self._answer(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, why)

            def _answer(self, status: HTTPStatus, text: str) -> None:
                self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")

            def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("Probe %s", format % args)

        super().__init__(host=host, port=port, handler=Handler, name="worker-probes")

    def start(self) -> None:
        """Start serving in the background."""
        super().start()
        log.info("Serving probes on port %d (/readyz, /livez)", self.port)
