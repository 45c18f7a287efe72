"""The watch handlers keep the views current and wake bindings only when it matters."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from phonefleet_operator.handlers.binding_watch import BindingEvents
from phonefleet_operator.handlers.claims import claim_seen
from phonefleet_operator.handlers.pods import worker_pod_seen
from phonefleet_operator.main import QuietWatchHandlers
from phonefleet_operator.services.coordination import Waiters, Wakeups
from phonefleet_operator.services.observed import ObservedClaims, ObservedPods


@pytest.fixture
def memo() -> Any:
    wakeups = Wakeups()
    for uid in ("b-1", "b-2"):  # the bindings whose loops run
        wakeups.register(uid)
    runtime = SimpleNamespace(
        observed_pods=ObservedPods(),
        observed_claims=ObservedClaims(),
        wakeups=wakeups,
        waiters=Waiters(),
    )
    return SimpleNamespace(runtime=runtime)


async def _nothing(*_: Any) -> None:
    return None


def wake_binding(event: dict[str, Any], memo: Any) -> None:
    """The bindings watch's callback, on a runtime whose loops, jobs and tenancy do nothing."""
    runtime = memo.runtime
    runtime.jobs = SimpleNamespace(
        saw_binding=lambda *_: None, jobs=SimpleNamespace(of_binding=lambda *_: ())
    )
    runtime.tenancy = SimpleNamespace(binding_event=_nothing)
    if not hasattr(runtime, "forget"):
        runtime.forget = lambda body: None
    loops = SimpleNamespace(saw=lambda *_: None)
    BindingEvents(runtime, loops)(event["type"], event["object"])  # type: ignore[arg-type]


def clear(memo: Any) -> None:
    for event in memo.runtime.wakeups._events.values():
        event.clear()


def woken(memo: Any) -> set[str]:
    events = memo.runtime.wakeups._events
    return {uid for uid, event in events.items() if event.is_set()}


def pod(phase: str = "Pending", ready: str | None = None, **metadata: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready}]
    owner = {"kind": "PhoneBinding", "uid": "b-1", "controller": True, "name": "alpha"}
    return {
        "metadata": {"name": "alpha-worker", "namespace": "ns", "uid": "p-1", **metadata}
        | {"ownerReferences": [owner]},
        "status": status,
    }


def test_a_pod_becoming_ready_wakes_its_binding_and_a_repeat_does_not(memo: Any) -> None:
    worker_pod_seen(event={"type": "ADDED", "object": pod()}, memo=memo)
    assert woken(memo) == {"b-1"}
    clear(memo)

    same = pod(resourceVersion="2")  # an update that changes nothing the binding reads
    worker_pod_seen(event={"type": "MODIFIED", "object": same}, memo=memo)
    assert woken(memo) == set()

    worker_pod_seen(event={"type": "MODIFIED", "object": pod("Running", "True")}, memo=memo)
    assert woken(memo) == {"b-1"}
    assert memo.runtime.observed_pods.get("ns", "alpha-worker")["status"]["phase"] == "Running"


def test_a_deleted_pod_leaves_the_view_and_wakes_its_binding(memo: Any) -> None:
    worker_pod_seen(event={"type": "ADDED", "object": pod()}, memo=memo)
    clear(memo)
    worker_pod_seen(event={"type": "DELETED", "object": pod()}, memo=memo)
    assert memo.runtime.observed_pods.get("ns", "alpha-worker") is None
    assert woken(memo) == {"b-1"}


def test_claims_view_follows_the_watch_and_a_deletion_wakes_holder_and_waiters(
    memo: Any,
) -> None:
    claim = {"metadata": {"name": "100"}, "spec": {"holder": {"uid": "b-1"}}}
    waiter = SimpleNamespace(uid="b-2")
    claim_seen(event={"type": "ADDED", "object": claim}, memo=memo, phone_waiters={})
    assert memo.runtime.observed_claims.holder_uid("100") == "b-1"
    assert woken(memo) == set()
    claim_seen(
        event={"type": "DELETED", "object": claim}, memo=memo, phone_waiters={"100": [waiter]}
    )
    assert memo.runtime.observed_claims.holder_uid("100") is None
    assert woken(memo) == {"b-1", "b-2"}


def test_a_claim_deleted_by_hand_wakes_its_holder_and_is_nobodys_in_the_view(memo: Any) -> None:
    """Its finalizer keeps it (a MODIFIED event with a deletionTimestamp): the holder must look
    (to remove its pod, then the finalizer); no pass may take the view's word that it holds."""
    claim = {"metadata": {"name": "100"}, "spec": {"holder": {"uid": "b-1"}}}
    claim_seen(event={"type": "ADDED", "object": claim}, memo=memo, phone_waiters={})
    deleted = {**claim, "metadata": {"name": "100", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    claim_seen(event={"type": "MODIFIED", "object": deleted}, memo=memo, phone_waiters={})
    assert woken(memo) == {"b-1"}
    assert memo.runtime.observed_claims.holder_uid("100") == ""


@pytest.mark.parametrize(
    ("generation", "observed", "wakes"),
    [(2, 1, True), (2, 2, False), (1, None, False)],
)
async def test_a_spec_change_no_pass_has_seen_wakes_the_binding(
    memo: Any, generation: int, observed: int | None, wakes: bool
) -> None:
    status = {} if observed is None else {"observedGeneration": observed}
    body = {"metadata": {"uid": "b-1", "generation": generation}, "status": status}
    wake_binding(event={"type": "MODIFIED", "object": body}, memo=memo)
    assert (woken(memo) == {"b-1"}) is wakes


def test_success_lines_of_the_per_event_handlers_are_dropped_and_failures_kept() -> None:
    quiet = QuietWatchHandlers("namespace_seen")

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, None, None)

    assert not quiet.filter(record("Handler 'namespace_seen' succeeded."))
    assert quiet.filter(record("Handler 'claim_check' succeeded."))
    assert quiet.filter(record("Handler 'namespace_seen' failed with an exception. Will retry."))


def test_a_binding_without_a_running_loop_is_not_woken_and_leaves_nothing_behind(
    memo: Any,
) -> None:
    """The last events of a released binding's pod name a binding that is gone."""
    gone = pod()
    gone["metadata"]["ownerReferences"][0]["uid"] = "released"
    worker_pod_seen(event={"type": "DELETED", "object": gone}, memo=memo)
    assert "released" not in memo.runtime.wakeups._events


def binding_event(kind: str, uid: str, created: str, phase: str, phone: str) -> dict[str, Any]:
    return {
        "type": kind,
        "object": {
            "metadata": {
                "name": uid,
                "namespace": "ns",
                "uid": uid,
                "creationTimestamp": created,
                "generation": 1,
            },
            "spec": {"phoneId": phone},
            "status": {"phase": phase, "phone": {"id": phone}, "observedGeneration": 1},
        },
    }


async def test_the_waiters_follow_the_bindings_events_oldest_first(memo: Any) -> None:
    """A binding in Conflict waits for its phone until it leaves Conflict or is deleted; the
    waiters of a phone come oldest first."""
    waiters = memo.runtime.waiters
    memo.runtime.forget = lambda body: waiters.gone(body["metadata"]["uid"])
    wake_binding(
        event=binding_event("ADDED", "b-2", "2026-11-29T00:00:02Z", "Conflict", "7"), memo=memo
    )
    wake_binding(
        event=binding_event("ADDED", "b-1", "2026-11-29T00:00:01Z", "Conflict", "7"), memo=memo
    )
    assert [w.uid for w in waiters.get("7", ())] == ["b-1", "b-2"]

    wake_binding(
        event=binding_event("MODIFIED", "b-1", "2026-11-29T00:00:01Z", "Running", "7"), memo=memo
    )
    assert [w.uid for w in waiters.get("7", ())] == ["b-2"]

    wake_binding(
        event=binding_event("DELETED", "b-2", "2026-11-29T00:00:02Z", "Conflict", "7"), memo=memo
    )
    assert waiters.get("7", ()) == ()
    assert len(waiters) == 0
