"""The operator's entry point: registers the handlers, tunes kopf and starts it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.gc_tuning import tune_gc
from phonefleet_operator.handlers import pools, watches
from phonefleet_operator.k8s.events import COMPONENT
from phonefleet_operator.k8s.in_cluster import service_account_login
from phonefleet_operator.leadership import run_elected
from phonefleet_operator.services.monitoring import Monitoring, stop_monitoring
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import (
    GeelarkSettings,
    InvalidSettings,
    JobSettings,
    OperatorSettings,
    load_settings,
)
from phonefleet_operator.waiting import each_step
from phonefleet_operator.webhook import serve_admission

__all__ = ["InlineExecutor", "NoDiffBase", "QuietWatchHandlers", "configure", "run"]

T = TypeVar("T")

# Importing the handler modules registers them with kopf; keep the names referenced.
_REGISTERED = (pools, watches)

#: What ``configure`` puts into the memo, forgotten when its attempt fails.
_STARTED = ("watches", "binding_events", "watch_client", "monitoring", "admission", "runtime")

#: The namespaces given with --namespace (empty: all), for the watches started at start-up.
_NAMESPACES: list[str] = []


def _quiet() -> logging.Filter:
    return QuietWatchHandlers(*pools.HANDLER_IDS)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Load our settings once, tune kopf for many objects, and build the runtime."""
    try:
        operator_settings = load_settings(OperatorSettings)
        geelark_settings = load_settings(GeelarkSettings)
        job_settings = load_settings(JobSettings)
    except InvalidSettings as error:
        raise kopf.PermanentError(f"Invalid settings: {error}") from None
    tune_kopf(settings, operator_settings)
    # `phonefleet-operator` hands the process's Replica in (it serves admission before and
    # after this run); `kopf run -m phonefleet_operator.main` (the tests) has none: this run
    # builds its own and serves admission while it lasts.
    replica: Replica | None = getattr(memo, "replica", None)
    runtime = Runtime.create(
        operator_settings, geelark_settings, job_settings, replica, namespaces=_NAMESPACES
    )
    memo.runtime = runtime
    try:
        if replica is None and runtime.replica is not None:
            memo.admission = contextlib.AsyncExitStack()
            await memo.admission.enter_async_context(serve_admission(runtime.replica))
        await runtime.jobs.prepare()  # the job key, before any ADB Secret is written
        await runtime.load_pools()  # before the bindings' first writes fill the API threads
        runtime.start_background()
        memo.monitoring = Monitoring.start(operator_settings, geelark_settings, runtime)
        watches.start_watches(memo, runtime.waiters, tuple(_NAMESPACES))
    except BaseException:
        # kopf runs no clean-up handler after a start-up that failed or was cancelled (a stop
        # during it): what this attempt started (watch threads, sessions) would outlive the
        # event loop. Its retry starts afresh.
        await watches.end_watches(memo)
        await _close(memo)
        for name in _STARTED:
            memo.pop(name, None)
        raise


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a cluster its service account, elsewhere the kubeconfig (read at start-up)."""
    return service_account_login(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    """Close the Geelark session and the Kubernetes connection pool (every step runs; a
    failure is logged, never raised: kopf would retry this handler every minute forever)."""
    await _close(memo)


async def _close(memo: kopf.Memo) -> None:
    admission: contextlib.AsyncExitStack | None = getattr(memo, "admission", None)
    runtime: Runtime | None = getattr(memo, "runtime", None)
    await each_step(
        [
            ("monitoring", lambda: stop_monitoring(getattr(memo, "monitoring", None))),
            ("admission", admission.aclose if admission is not None else _nothing),
            ("the runtime", runtime.close if runtime is not None else _nothing),
        ]
    )


async def _nothing() -> None:
    return None


@kopf.on.probe(id="geelark")
def geelark_probe(memo: kopf.Memo, **_: Any) -> str:
    """Report on /healthz whether Geelark answered recently (never a secret, never a failure)."""
    runtime: Runtime | None = getattr(memo, "runtime", None)
    return runtime.geelark_health() if runtime is not None else "starting"


@kopf.on.probe(id="background")
def background_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any] | str:
    """Fail /healthz (HTTP 500: liveness) when a background task has ended (docs/reconcile.md)."""
    runtime: Runtime | None = getattr(memo, "runtime", None)
    return runtime.background_health() if runtime is not None else "starting"


class NoDiffBase(kopf.DiffBaseStorage):
    """Keeps no last-handled state: for an operator without create/update/field handlers.

    kopf then sees every event of a live object as a creation with no handler to run, which
    costs nothing; deletion handlers still run, since deletion is read from the object itself.
    """

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """Nothing is stored."""
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Store nothing (no PATCH of the object)."""


class QuietWatchHandlers(logging.Filter):
    """Drops kopf's "Handler 'x' succeeded." lines of handlers that run on every watch event.

    They only update in-memory views and wake-ups; applying a thousand bindings made ten
    thousand such lines, which said nothing and cost the event loop their formatting.
    """

    def __init__(self, *handler_ids: str) -> None:
        super().__init__()
        self._lines = frozenset(f"Handler {handler_id!r} succeeded." for handler_id in handler_ids)

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the success lines of the named handlers."""
        return record.getMessage() not in self._lines


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once in the calling thread (for tiny, non-blocking handlers)."""

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Call ``fn`` now; its result or exception is in the returned (done) future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as a thread would
            future.set_exception(error)
        return future


def tune_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """kopf settings for what kopf still handles (PhoneJobs, PhonePools, Namespaces, probes);
    each line says why."""
    # No Event per log line of kopf's handlers. Ours (one per transition) are posted by
    # k8s/events.py, with the same source as below.
    settings.posting.level = logging.INFO
    settings.posting.loggers = False
    # Our name in the Events' source (the "From" of `kubectl describe`), not kopf's; the
    # instance is the pod (its host name), so that replicas' Events can be told apart.
    settings.posting.reporting_component = COMPONENT
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "phonefleet-"
    # PhoneBindings are not kopf's (handlers/binding_watch.py): their finalizer is ours, under
    # its own name. Our annotation keys for any kopf progress, and none in .status: the status
    # belongs to each resource's contract (the bindings' annotations older versions left are
    # read by nobody).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    # No last-handled-configuration annotation: no handler of ours needs kopf's diffs, and
    # storing it cost one PATCH and one more watch event per object.
    settings.persistence.diffbase_storage = NoDiffBase()
    # Watches are re-established regularly so a silently dead connection cannot stall us.
    settings.watching.server_timeout = ours.watch_server_timeout_seconds
    settings.watching.client_timeout = ours.watch_server_timeout_seconds + 30
    settings.watching.connect_timeout = 10
    # Do not list every CRD in the cluster at start-up: we know our resources (least privilege).
    settings.scanning.disabled = True
    # A stuck API call fails fast and is retried instead of holding a binding for minutes.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # At most 100 objects' events are handled at once, and an idle object worker frees its slot
    # after 0.1 s. Unlimited (measured when kopf still handled PhoneBindings), 1,000 new
    # bindings meant 1,000 concurrent kopf patches, each on a new TLS connection (kopf's pool
    # has no limit), and the operator's memory peaked at 470 MiB (make bench); the limit also
    # makes the watch wait instead of piling up decoded events.
    # An idle worker keeps its slot until it exits: at 1 s, 100 slots handled about 100 objects
    # a second per resource, and the echoes of a fleet's status writes queued behind each other.
    settings.queueing.worker_limit = 100
    settings.queueing.idle_timeout = 0.1
    # Our sync handlers (the pools and namespaces views, login) are tiny and
    # never block: run them on the loop instead of a thread hop per event (measured: the hops
    # and their GIL hand-offs cost more than the handlers; see `make bench`).
    settings.execution.executor = InlineExecutor()
    # Success lines of the per-event handlers say nothing (failures are still logged).
    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietWatchHandlers) for f in kopf_objects.filters):
        kopf_objects.addFilter(_quiet())


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Exit codes: 0 stopped by a signal; 1 ended by an error (logged), or the Lease was "
        "lost (the kubelet starts it again as a standby); 2 invalid settings (the variable is "
        "named, never its value); 3 this identity may not serve its account, or may not write "
        "in a namespace it serves (docs/accounts.md)."
    ),
)
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only these namespaces (repeatable). Default: all namespaces.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8081/healthz",
    show_default=True,
    help="Where kopf serves the liveness probe.",
)
@click.option("--verbose", is_flag=True, help="Log at debug level.")
def run(namespaces: tuple[str, ...], liveness: str, verbose: bool) -> None:
    """Run the phonefleet operator (settings come from PHONEFLEET_* variables)."""
    try:
        # Checked before kopf starts, so that a mistake ends the command at once (exit 2).
        load_settings(OperatorSettings)
        load_settings(GeelarkSettings)
    except InvalidSettings as error:
        click.echo(f"phonefleet-operator: invalid settings: {error}", err=True)
        sys.exit(2)
    _NAMESPACES[:] = namespaces
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s [%(name)s] %(message)s",
    )
    operator = functools.partial(
        kopf.operator,
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=liveness,
    )
    tune_gc()  # everything is imported: freeze it, collect less often (gc_tuning.py)
    # With PHONEFLEET_LEADER_ELECTION, kopf runs only while this replica holds the Lease;
    # admission is served by every replica from start-up to exit (leadership.py).
    sys.exit(
        asyncio.run(
            run_elected(
                lambda stop, replica: operator(stop_flag=stop, memo=kopf.Memo(replica=replica)),
                liveness,
                namespaces,
            )
        )
    )
