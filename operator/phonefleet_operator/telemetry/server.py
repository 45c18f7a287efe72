"""The ``/metrics`` HTTP endpoint: prometheus_client's server in a thread of its own.

A thread, not the event loop: a scrape then never waits behind a busy loop (at 1,000 bindings
the loop is the operator's narrowest point, README: Benchmark), and the loop never pays for
formatting the exposition.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from phonefleet_operator.telemetry.metrics import geelark_budget
from phonefleet_operator.telemetry.phases import bindings, job_phases

__all__ = ["MetricsServer", "serve"]

log = logging.getLogger(__name__)


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``stop`` frees its port."""

    server: WSGIServer
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(port: int, addr: str, *, geelark_requests_per_minute: int | None = None) -> MetricsServer:
    """Serve the process's metrics on ``addr:port`` (``/metrics``; any path answers the same).

    Clears the phase views first: an operator started again in the same process (tests) must
    not count the bindings of the one before.
    """
    bindings.clear()
    job_phases.clear()
    if geelark_requests_per_minute is not None:
        geelark_budget.configure(geelark_requests_per_minute)
    server, thread = start_http_server(port, addr)
    bound = server.server_address[1]
    url = f"http://{addr}:{bound}/metrics"
    log.info("Serving Prometheus metrics at %s", url)
    return MetricsServer(server, thread, url)
