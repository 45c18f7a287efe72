"""Events posted by the operator itself (k8s/events.py): kopf's fields, one object's Events in
the order they were queued, a failing API server tried again and then given up on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from loop_order import loop_caught_up, until

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.k8s.events import EventPoster
from phonefleet_operator.waiting import event_within

#: The retry back-offs run on a virtual clock (looptime).
pytestmark = pytest.mark.looptime

BINDING = {
    "apiVersion": "phonefleet.dev/v1alpha1",
    "kind": "PhoneBinding",
    "metadata": {"name": "b", "namespace": "ns", "uid": "u-1"},
}


class Caller:
    """The API caller: records each Event created; fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        #: The loop's time of each post (virtual under looptime: set by the poster's own waits).
        self.posted_at: list[float] = []
        self.failures = failures
        self.calls = 0
        self.core = self

    def create_namespaced_event(self, namespace: str, body: dict[str, Any]) -> None:
        raise AssertionError("called through the caller only")

    async def __call__(self, method: Callable[..., Any], namespace: str, body: Any) -> None:
        self.calls += 1
        await loop_caught_up()  # gives the loop up once, as a call waiting on its thread does
        if self.calls <= self.failures:
            raise KubernetesUnavailable("Kubernetes API call failed: 503", delay=5)
        self.posted.append((namespace, body))
        self.posted_at.append(asyncio.get_running_loop().time())


async def drained(poster: EventPoster) -> None:
    await asyncio.gather(*(w for w in poster._workers if w is not None))


async def test_an_event_has_kopfs_fields_and_one_objects_events_keep_their_order() -> None:
    caller = Caller()
    poster = EventPoster(caller, instance="pod-1")  # type: ignore[arg-type]
    for n in range(20):
        poster.post(BINDING, warning=n == 0, reason=f"R{n}", message="x" * 2000)
    await drained(poster)
    assert [body["reason"] for _, body in caller.posted] == [f"R{n}" for n in range(20)]
    namespace, first = caller.posted[0]
    assert namespace == "ns"
    assert first["type"] == "Warning"
    assert first["involvedObject"] == {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "name": "b",
        "uid": "u-1",
        "namespace": "ns",
    }
    assert first["source"] == {"component": "phonefleet-operator"}
    assert first["reportingInstance"] == "pod-1"
    assert first["metadata"]["generateName"] == "phonefleet-"
    assert len(first["message"]) <= 1024


async def test_a_failing_api_server_is_tried_three_times_then_the_event_is_dropped() -> None:
    caller = Caller(failures=10)
    poster = EventPoster(caller, instance="pod-1")  # type: ignore[arg-type]
    poster.post(BINDING, warning=False, reason="R", message="m")
    await drained(poster)
    assert caller.calls == 3
    assert caller.posted == []


class Backlog:
    """The passes' API caller as the poster sees it (``ApiCaller.quiet``): calls wait for a
    thread until ``drained`` is set."""

    def __init__(self) -> None:
        self.drained = asyncio.Event()
        self.asked = 0

    async def quiet(self, within: float) -> bool:
        self.asked += 1
        return await event_within(self.drained, within)


async def test_normal_events_wait_while_the_passes_calls_have_a_backlog() -> None:
    caller, backlog = Caller(), Backlog()
    poster = EventPoster(caller, instance="pod-1", yield_to=backlog)  # type: ignore[arg-type]
    poster.post(BINDING, warning=False, reason="CreatedPod", message="m")
    await until(lambda: backlog.asked == 1)
    await loop_caught_up()
    assert caller.posted == []
    backlog.drained.set()
    await drained(poster)
    assert [body["reason"] for _, body in caller.posted] == ["CreatedPod"]


async def test_a_warning_is_posted_at_once_whatever_the_backlog() -> None:
    caller, backlog = Caller(), Backlog()
    poster = EventPoster(caller, instance="pod-1", yield_to=backlog)  # type: ignore[arg-type]
    poster.post(BINDING, warning=True, reason="PhoneNotFound", message="m")
    await drained(poster)
    assert [body["reason"] for _, body in caller.posted] == ["PhoneNotFound"]
    assert backlog.asked == 0


async def test_a_normal_event_waits_at_most_the_deferral_after_it_was_queued() -> None:
    """A backlog that never drains (a fleet of 5,000 coming up) delays an Event, not for ever;
    the next ones of its lane were queued as long ago, so they follow without waiting again."""
    caller, backlog = Caller(), Backlog()
    poster = EventPoster(caller, instance="pod-1", yield_to=backlog, defer_seconds=30)  # type: ignore[arg-type]
    queued_at = asyncio.get_running_loop().time()
    for n in range(3):
        poster.post(BINDING, warning=False, reason=f"R{n}", message="m")
    await drained(poster)
    assert [body["reason"] for _, body in caller.posted] == ["R0", "R1", "R2"]
    # The loop's clock is looptime's: it moves only by the poster's own waits.
    assert caller.posted_at[0] - queued_at == pytest.approx(30)
    assert backlog.asked == 1


async def test_a_warning_never_waits_behind_a_deferred_normal_event_of_its_lane() -> None:
    """A Warning queued while a Normal Event of the same object waits for the backlog: both are
    posted at once, in the order they were queued; the Normal Event ahead is not deferred."""
    caller, backlog = Caller(), Backlog()
    poster = EventPoster(caller, instance="pod-1", yield_to=backlog, defer_seconds=30)  # type: ignore[arg-type]
    poster.post(BINDING, warning=False, reason="CreatedPod", message="m")
    await until(lambda: backlog.asked == 1)
    poster.post(BINDING, warning=True, reason="PhoneNotFound", message="m")
    poster.post(BINDING, warning=False, reason="Later", message="m")
    await until(lambda: len(caller.posted) == 2, within=10)
    assert [body["reason"] for _, body in caller.posted] == ["CreatedPod", "PhoneNotFound"]
    await drained(poster)  # the Normal Event behind the Warning waits again, within its deferral
    assert [body["reason"] for _, body in caller.posted][2:] == ["Later"]
