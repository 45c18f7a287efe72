"""The supervisor of the bindings' loops (services/binding_loops.py): our finalizer added under
the binding's resourceVersion, one loop per binding on its latest body, failures retried, the
release on deletion done once and followed by the removal of our finalizer only.

The API server is an in-memory fake that behaves as the real one does for these writes: every
write bumps the resourceVersion, a write naming an older one is refused (409), a binding deleted
with finalizers only gets a deletionTimestamp and goes when the last one is removed. Its watch is
the list of events it would send, pumped into the supervisor by the test.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from loop_order import let_virtual_time_pass, until

from phonefleet_operator.constants import FINALIZER
from phonefleet_operator.errors import KubernetesUnavailable, ReplicaStopping, TemporaryFault
from phonefleet_operator.services.binding_loops import BindingLoops
from phonefleet_operator.services.claims import BindingRef
from phonefleet_operator.services.coordination import Waiters, Wakeups

#: The retry delays run on a virtual clock (looptime): no test waits on the wall clock.
pytestmark = pytest.mark.looptime

Obj = dict[str, Any]
OTHER = "example.com/keep-me"


class BindingServer:
    """PhoneBindings as the API server keeps them (see the module's docstring)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.events: list[tuple[str, Obj]] = []
        self.writes = 0
        self.refused = 0
        #: Changes another client makes while one of our writes is on its way.
        self.meanwhile: list[Callable[[], None]] = []
        self._versions = itertools.count(1)
        self._uids = itertools.count(1)

    def _changed(self, key: tuple[str, str], event_type: str = "MODIFIED") -> None:
        obj = self.objects[key]
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.events.append((event_type, copy.deepcopy(obj)))

    def create(self, name: str, finalizers: Sequence[str] = (), **metadata: Any) -> Obj:
        key = ("ns", name)
        self.objects[key] = {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{next(self._uids)}",
                "generation": 1,
                "finalizers": list(finalizers),
                **metadata,
            },
            "spec": {"phoneId": "p1"},
            "status": {"phone": {"id": "p1"}},
        }
        self._changed(key, "ADDED")
        return self.objects[key]

    def add_finalizer_by_hand(self, name: str, finalizer: str) -> None:
        self.objects[("ns", name)]["metadata"]["finalizers"].append(finalizer)
        self._changed(("ns", name))

    def write_status(self, name: str, phase: str) -> None:
        self.objects[("ns", name)]["status"]["phase"] = phase
        self._changed(("ns", name))

    def delete(self, name: str) -> None:
        key = ("ns", name)
        obj = self.objects[key]
        if not obj["metadata"]["finalizers"]:
            del self.objects[key]
            self.events.append(("DELETED", copy.deepcopy(obj)))
            return
        obj["metadata"].setdefault("deletionTimestamp", "2026-11-29T11:00:00Z")
        self._changed(key)

    async def set(
        self, namespace: str, name: str, resource_version: str, finalizers: Sequence[str]
    ) -> Obj | None:
        # What other clients write while ours is on its way is the test's to say (meanwhile).
        if self.meanwhile:
            self.meanwhile.pop(0)()
        obj = self.objects.get((namespace, name))
        if obj is None:
            return None
        if obj["metadata"]["resourceVersion"] != resource_version:
            self.refused += 1
            return None
        self.writes += 1
        obj["metadata"]["finalizers"] = list(finalizers)
        if not finalizers and obj["metadata"].get("deletionTimestamp"):
            del self.objects[(namespace, name)]
            self.events.append(("DELETED", copy.deepcopy(obj)))
            return copy.deepcopy(obj)
        self._changed((namespace, name))
        return copy.deepcopy(obj)

    async def get_binding(self, namespace: str, name: str) -> Obj | None:
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def finalizers(self, name: str) -> list[str]:
        return list(self.objects[("ns", name)]["metadata"]["finalizers"])


class Operator:
    """The supervisor with a reconcile and a release that record what they were given."""

    def __init__(self, server: BindingServer) -> None:
        self.server = server
        self.passes: list[Obj] = []
        self.releases: list[str] = []
        self.wakeups = Wakeups()
        self.waiters = Waiters()
        self.pass_faults: list[BaseException] = []
        self.release_faults: list[BaseException] = []
        self.delay: float | None = 60.0
        self.loops = BindingLoops(
            reconcile=self._reconcile,
            release=self._release,
            finalizers=server,
            get_binding=server.get_binding,
            wakeups=self.wakeups,
            waiters=self.waiters,
        )
        self._pumped = 0

    async def _reconcile(self, body: Obj) -> float | None:
        self.passes.append(copy.deepcopy(body))
        if self.pass_faults:
            raise self.pass_faults.pop(0)
        if body["metadata"].get("deletionTimestamp"):
            return None
        return self.delay

    async def _release(self, body: Obj) -> str | None:
        if self.release_faults:
            raise self.release_faults.pop(0)
        self.releases.append(body["metadata"]["uid"])
        # A release writes the status: the binding's resourceVersion moves on.
        self.server.write_status(body["metadata"]["name"], "Released")
        return "p1"

    def pump(self) -> None:
        """Deliver the events the watch would have sent since the last pump."""
        while self._pumped < len(self.server.events):
            event_type, obj = self.server.events[self._pumped]
            self._pumped += 1
            self.loops.saw(event_type, copy.deepcopy(obj))


@pytest.fixture
def server() -> BindingServer:
    return BindingServer()


@pytest.fixture
async def operator(server: BindingServer) -> Any:
    built = Operator(server)
    yield built
    await built.loops.close()


async def test_a_new_binding_gets_our_finalizer_then_its_loop_runs_on_the_latest_body(
    server: BindingServer, operator: Operator
) -> None:
    server.create("b", finalizers=[OTHER])
    operator.pump()
    assert operator.passes == []  # nothing is done for a binding that could go unreleased
    await until(lambda: bool(operator.passes), operator.pump)
    assert server.finalizers("b") == [OTHER, FINALIZER]
    assert FINALIZER in operator.passes[0]["metadata"]["finalizers"]
    assert "uid-1" in operator.wakeups
    assert "uid-1" in operator.loops

    server.write_status("b", "Running")
    operator.pump()
    operator.wakeups.wake("uid-1")
    await until(lambda: len(operator.passes) == 2, operator.pump)
    assert operator.passes[1]["status"]["phase"] == "Running"
    assert server.writes == 1  # the finalizer, once: its echo wrote nothing


async def test_a_finalizer_added_by_another_meanwhile_is_kept_and_ours_added_after_a_409(
    server: BindingServer, operator: Operator
) -> None:
    server.create("b")
    # Another controller adds its finalizer while our write, on the version before, is on its way.
    server.meanwhile.append(lambda: server.add_finalizer_by_hand("b", OTHER))
    await until(lambda: bool(operator.passes), operator.pump)
    assert server.refused == 1
    assert server.finalizers("b") == [OTHER, FINALIZER]


async def test_a_deleted_binding_is_released_once_then_loses_only_our_finalizer(
    server: BindingServer, operator: Operator
) -> None:
    """The release writes the status first (a new resourceVersion): the finalizer's removal
    is refused once, read again and done; the waiters of the phone are woken. The late echo
    of the status write, which still shows our finalizer, releases nothing again."""
    server.create("b")
    await until(lambda: bool(operator.passes), operator.pump)
    server.add_finalizer_by_hand("b", OTHER)
    waiter = BindingRef(created="2026", namespace="ns", name="w", uid="w-1")
    operator.wakeups.register("w-1")
    operator.waiters.saw("w-1", ("p1", waiter))

    server.delete("b")
    await until(lambda: "uid-1" not in operator.loops, operator.pump)
    operator.pump()  # late events still show our finalizer (the release's status write)
    await until(lambda: not operator.loops)
    assert operator.releases == ["uid-1"]
    assert server.finalizers("b") == [OTHER]
    assert server.refused == 1
    assert operator.wakeups._events["w-1"].is_set()
    assert "uid-1" not in operator.wakeups


async def test_a_release_that_is_not_done_is_tried_again_and_the_finalizer_stays_until_then(
    server: BindingServer, operator: Operator
) -> None:
    server.create("b")
    await until(lambda: bool(operator.passes), operator.pump)
    operator.release_faults = [
        TemporaryFault("pod still terminating", delay=1),
        RuntimeError("a bug met an odd binding"),
    ]
    server.delete("b")
    operator.pump()
    await until(lambda: not operator.release_faults)
    assert server.finalizers("b") == [FINALIZER]
    await until(lambda: ("ns", "b") not in server.objects, operator.pump)
    assert operator.releases == ["uid-1"]


async def test_a_failed_pass_is_logged_and_tried_again(
    server: BindingServer, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    operator.pass_faults = [
        KubernetesUnavailable("Kubernetes API call failed: 503", delay=5),
        ValueError("a bug"),
    ]
    server.create("b")
    await until(lambda: len(operator.passes) == 3, operator.pump)
    assert "failed temporarily" in caplog.text
    assert "ValueError: a bug" in caplog.text


async def test_a_binding_left_deleting_by_an_older_version_is_released_without_a_pass(
    server: BindingServer, operator: Operator
) -> None:
    """After an upgrade (or a restart) the first list holds a binding with our finalizer and a
    deletionTimestamp: it is released once, and no pass runs for it."""
    server.create(
        "old",
        finalizers=[FINALIZER],
        deletionTimestamp="2026-11-29T10:00:00Z",
        annotations={"phonefleet.dev/release_binding": '{"started": "2026-11-29T10:00:00"}'},
    )
    await until(lambda: ("ns", "old") not in server.objects and not operator.loops, operator.pump)
    operator.pump()
    assert operator.releases == ["uid-1"]
    assert operator.passes == []


async def test_a_binding_gone_without_its_deletion_seen_ends_its_loop_and_releases_nothing(
    server: BindingServer, operator: Operator
) -> None:
    """Its finalizer removed by hand: the DELETED event (or the relist's) is all that comes."""
    server.create("b")
    await until(lambda: bool(operator.passes), operator.pump)
    gone = copy.deepcopy(server.objects.pop(("ns", "b")))
    operator.loops.saw("DELETED", gone)
    await until(lambda: "uid-1" not in operator.loops)
    assert operator.releases == []
    assert "uid-1" not in operator.wakeups


async def test_stopping_ends_every_loop_and_leaves_the_finalizers_to_the_next_leader(
    server: BindingServer, operator: Operator
) -> None:
    for name in ("a", "b"):
        server.create(name)
    await until(lambda: len(operator.passes) == 2, operator.pump)
    operator.release_faults = [TemporaryFault("pod still terminating", delay=1)] * 100
    server.delete("b")
    operator.pump()
    await until(lambda: len(operator.release_faults) < 100)
    await operator.loops.close()
    assert len(operator.loops) == 0
    assert server.finalizers("a") == [FINALIZER]
    assert server.finalizers("b") == [FINALIZER]
    assert operator.releases == []


async def test_a_pass_refused_because_the_replica_lost_the_lease_parks_its_loop_quietly(
    server: BindingServer, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    """ReplicaStopping (fence.py) is no fault of the binding: its loop waits for the stop
    without a retry and without a line about the binding (leadership.py logs the refusals
    once); a deleted binding's release that meets it leaves the finalizer for the next holder."""
    stopping = ReplicaStopping("Refused create_namespaced_pod: this replica lost Lease x/y")
    server.create("b")
    await until(lambda: bool(operator.passes), operator.pump)
    operator.pass_faults = [stopping]
    server.write_status("b", "Running")
    operator.pump()
    operator.wakeups.wake("uid-1")
    await until(lambda: len(operator.passes) == 2, operator.pump)
    await let_virtual_time_pass(3600)  # an hour in which a retry would have come
    assert len(operator.passes) == 2  # parked: not retried
    assert "uid-1" in operator.loops

    operator.release_faults = [stopping]
    server.delete("b")
    operator.pump()
    await until(lambda: not operator.release_faults)
    assert operator.releases == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    await operator.loops.close()
    assert server.finalizers("b") == [FINALIZER]
