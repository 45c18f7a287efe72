"""The checker's own eyes: watches of pods, claims and bindings, polls of the simulator, reads.

Each runs in a thread of its own with its own Kubernetes client (admin credentials, not the
operator's), and feeds the :class:`~phonefleet_testbed.chaos.checker.Checker`. A watch that breaks
(the API server restarting, a ``410 Gone``) lists again and replaces the checker's view with the
listing, which is exactly the relist a controller must survive.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from phonefleet_testbed.chaos.checker import Checker, PhoneReading
from phonefleet_testbed.geelark_sim import SimulatorAdmin

__all__ = ["KubeReader", "Observers", "api_client"]

Obj = Mapping[str, Any]
Clock = Callable[[], float]

GROUP = "phonefleet.dev"
VERSION = "v1alpha1"
WORKER_SELECTOR = "app.kubernetes.io/managed-by=phonefleet,app.kubernetes.io/component=worker"
BINDING_NAMESPACE_LABEL = "phonefleet.dev/binding-namespace"

# A watch request ends after this long and is opened again from the last resourceVersion, so a
# stopping run never waits longer than this for its threads.
_WATCH_SECONDS = 5
_POLL_SECONDS = 0.25
_EVALUATE_SECONDS = 0.2
_RETRY_SECONDS = 0.2


def api_client(kubeconfig: Path) -> Any:
    """A Kubernetes client of its own (one per thread), failing fast while the server is down."""
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    configuration.retries = 0
    return client.ApiClient(configuration)


class KubeReader:
    """Fresh GETs for the checker's proofs (see ``ClusterReader``)."""

    def __init__(self, kubeconfig: Path) -> None:
        self._api = api_client(kubeconfig)
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)

    def pod(self, namespace: str, name: str) -> Obj | None:
        """The pod now, or None."""
        try:
            reply: Any = self._core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=10
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found: Obj = json.loads(reply.data)
        return found

    def claim(self, phone_id: str) -> Obj | None:
        """The PhoneClaim now, or None."""
        try:
            found: Any = self._custom.get_cluster_custom_object(
                GROUP, VERSION, "phoneclaims", phone_id, _request_timeout=10
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        claim: Obj = found
        return claim

    def close(self) -> None:
        """Close the connection pool."""
        self._api.close()


class _KindWatch:
    """List, then watch from the listing's resourceVersion; list again after any gap."""

    def __init__(  # noqa: PLR0917 - one watch's wiring, built in one place
        self,
        kind: str,
        kubeconfig: Path,
        keep: Callable[[Obj], bool],
        on_list: Callable[[Iterable[Obj], float], None],
        on_event: Callable[[str, Obj, float], None],
        clock: Clock,
        stop: threading.Event,
        stats: Counter[str],
    ) -> None:
        self.kind = kind
        self._kubeconfig = kubeconfig
        self._keep = keep
        self._on_list = on_list
        self._on_event = on_event
        self._clock = clock
        self._stop = stop
        self._stats = stats
        self.thread = threading.Thread(target=self._run, name=f"chaos-watch-{kind}", daemon=True)

    def _calls(self, api: Any) -> tuple[Callable[..., Any], dict[str, Any]]:
        if self.kind == "pods":
            return client.CoreV1Api(api).list_pod_for_all_namespaces, {
                "label_selector": WORKER_SELECTOR
            }
        custom = client.CustomObjectsApi(api)
        return custom.list_cluster_custom_object, {
            "group": GROUP,
            "version": VERSION,
            "plural": self.kind,
        }

    def _list(self, call: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[list[Obj], str]:
        reply = call(**kwargs, _preload_content=False, _request_timeout=15)
        body = json.loads(reply.data)
        return body["items"], body["metadata"]["resourceVersion"]

    def _run(self) -> None:
        api = api_client(self._kubeconfig)
        call, kwargs = self._calls(api)
        try:
            while not self._stop.is_set():
                try:
                    items, version = self._list(call, kwargs)
                    self._on_list([o for o in items if self._keep(o)], self._clock())
                    self._watch(call, kwargs, version)
                except Exception:
                    self._stats[f"{self.kind} watch errors"] += 1
                    self._stop.wait(_RETRY_SECONDS)
        finally:
            api.close()

    def _watch(self, call: Callable[..., Any], kwargs: dict[str, Any], version: str) -> None:
        while not self._stop.is_set():
            stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                call,
                **kwargs,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=_WATCH_SECONDS,
                _request_timeout=_WATCH_SECONDS + 30,
                deserialize=False,
            )
            for event in stream:
                obj = event["object"]
                version = obj["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK" and self._keep(obj):
                    self._on_event(event["type"], obj, self._clock())


class Observers:
    """Every observer of one chaos run, started and stopped together."""

    def __init__(
        self,
        checker: Checker,
        *,
        kubeconfig: Path,
        simulator_url: str,
        namespaces: Iterable[str],
        clock: Clock,
        pools: Iterable[str] = (),
    ) -> None:
        self.checker = checker
        self.stats: Counter[str] = Counter()
        self._clock = clock
        self._stop = threading.Event()
        self._simulator_url = simulator_url
        mine = frozenset(namespaces)
        my_pools = frozenset(pools)
        self._journal = bool(my_pools)

        def in_namespaces(obj: Obj) -> bool:
            return (obj.get("metadata") or {}).get("namespace") in mine

        def held_in_namespaces(obj: Obj) -> bool:
            labels = (obj.get("metadata") or {}).get("labels") or {}
            holder = ((obj.get("spec") or {}).get("holder") or {}).get("namespace")
            return labels.get(BINDING_NAMESPACE_LABEL) in mine or holder in mine

        def of_the_run(obj: Obj) -> bool:
            return (obj.get("metadata") or {}).get("name") in my_pools

        feeds = [
            ("pods", in_namespaces, checker.pods_listed, checker.pod_event),
            ("phoneclaims", held_in_namespaces, checker.claims_listed, checker.claim_event),
            ("phonebindings", in_namespaces, checker.bindings_listed, checker.binding_event),
        ]
        if my_pools:
            feeds.append(("phonepools", of_the_run, checker.pools_listed, checker.pool_event))
        self._watches = [
            _KindWatch(kind, kubeconfig, keep, on_list, on_event, clock, self._stop, self.stats)
            for kind, keep, on_list, on_event in feeds
        ]
        self._threads = [w.thread for w in self._watches] + [
            threading.Thread(target=self._poll_simulator, name="chaos-poll-sim", daemon=True),
            threading.Thread(target=self._evaluate, name="chaos-evaluate", daemon=True),
        ]

    def start(self) -> None:
        """Start every watch, the simulator poll and the judging loop."""
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop and join every thread (a watch request ends within a few seconds)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise RuntimeError(f"observer threads did not stop: {alive}")
        self.checker.evaluate(self._clock())  # the last suspects, now that nothing else reads

    def _poll_simulator(self) -> None:
        with closing(SimulatorAdmin(self._simulator_url)) as admin:
            while not self._stop.is_set():
                try:
                    phones = admin.phones()
                except Exception:
                    self.stats["simulator polls failed"] += 1
                else:
                    self.checker.phones_polled(
                        (PhoneReading(p.id, p.status, p.stop_count) for p in phones), self._clock()
                    )
                if self._journal:
                    self._replay_journal(admin)
                self._stop.wait(_POLL_SECONDS)
            if self._journal:
                self._replay_journal(admin)  # the changes up to the end of the run

    def _replay_journal(self, admin: SimulatorAdmin) -> None:
        try:
            changes = admin.power_log(after=self.checker.power_seq)
        except Exception:
            self.stats["power journal reads failed"] += 1
        else:
            self.checker.power_changes(changes, self._clock())

    def _evaluate(self) -> None:
        # The only thread that judges: the checker's reads (its ClusterReader) happen here.
        while not self._stop.is_set():
            self.checker.evaluate(self._clock())
            self._stop.wait(_EVALUATE_SECONDS)
