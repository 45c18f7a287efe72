"""The operator's Prometheus metrics: what they are, the hooks that record them, the HTTP server.

Metric objects live in the process-wide registry of ``prometheus_client`` (its idiom: a counter
is a module attribute a decorator can reach), so the hooks in other modules are one line each:

* ``geelark/client.py``: ``@geelark_request`` on the one method that sends a request;
* ``k8s/gateway.py``: ``@count_creates`` / ``@count_calls`` on claim and pod writes;
* ``services/runtime.py``: ``@reconcile_pass`` on a binding's reconcile pass;
* ``handlers/binding_watch.py``: ``bindings.saw(event)`` on every binding watch event;
* ``main.py``: ``serve`` at start-up, ``stop`` at clean-up.

This package sits below every other layer: it imports none of them (it reads the objects it
is handed through small protocols), so any layer may record into it.

PhoneJob: ``job_phases`` is a :class:`PhaseView` ready for the jobs' watch handler
(``job_phases.saw(event)``); it exports ``phonefleet_jobs{namespace,phase}``.
"""

from phonefleet_operator.telemetry.metrics import (
    CLAIMS_CREATED,
    CLAIMS_LOST,
    LEADER,
    PODS_CREATED,
    PODS_DELETED,
    UNBOUND_RUNNING_LONGEST,
    UNBOUND_RUNNING_PHONES,
    count_calls,
    count_creates,
    geelark_budget,
    geelark_request,
    reconcile_pass,
)
from phonefleet_operator.telemetry.phases import BindingView, PhaseView, bindings, job_phases
from phonefleet_operator.telemetry.server import MetricsServer, serve

__all__ = [
    "CLAIMS_CREATED",
    "CLAIMS_LOST",
    "LEADER",
    "PODS_CREATED",
    "PODS_DELETED",
    "UNBOUND_RUNNING_LONGEST",
    "UNBOUND_RUNNING_PHONES",
    "BindingView",
    "MetricsServer",
    "PhaseView",
    "bindings",
    "count_calls",
    "count_creates",
    "geelark_budget",
    "geelark_request",
    "job_phases",
    "reconcile_pass",
    "serve",
]
