"""Bindings by phase, time outside Running and time to Running, from watch events."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from phonefleet_operator.telemetry import BindingView, PhaseView

CREATED = "2026-01-01T00:00:00Z"
T0 = 1767225600.0  # CREATED as Unix time


def event(
    uid: str,
    phase: str | None,
    *,
    kind: str = "MODIFIED",
    namespace: str = "farm",
    ready: str = "False",
    ready_since: str = CREATED,
    phone_id: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": ready_since}],
        }
        if phone_id:
            status["phone"] = {"id": phone_id}
    return {
        "type": kind,
        "object": {
            "metadata": {"uid": uid, "namespace": namespace, "creationTimestamp": CREATED},
            "status": status,
        },
    }


def exposition(view: PhaseView) -> str:
    registry = CollectorRegistry()
    registry.register(view)
    return generate_latest(registry).decode()


def test_bindings_are_counted_per_namespace_and_phase_and_forgotten_when_deleted() -> None:
    """Each binding counts once, in its latest phase; a DELETED event removes it."""
    view = BindingView(clock=lambda: T0 + 100)
    view.saw(event("a", None, kind="ADDED"))
    view.saw(event("a", "Running", ready="True"))
    view.saw(event("b", "Conflict"))
    view.saw(event("c", "Conflict", namespace="other"))
    view.saw(event("d", "Running", ready="True"))
    view.saw(event("d", "Running", kind="DELETED"))

    assert view.counts() == {
        ("farm", "Running"): 1,
        ("farm", "Conflict"): 1,
        ("other", "Conflict"): 1,
    }
    text = exposition(view)
    assert 'phonefleet_bindings{namespace="farm",phase="Running"} 1.0' in text
    assert 'phonefleet_bindings{namespace="other",phase="Conflict"} 1.0' in text


def test_a_binding_without_status_counts_as_pending() -> None:
    """A binding the operator has not written yet is Pending, as the CRD's first phase."""
    view = BindingView()
    view.saw(event("a", None, kind="ADDED"))
    assert view.counts() == {("farm", "Pending"): 1}


def test_the_longest_time_outside_running_is_per_namespace_and_phase() -> None:
    """The oldest not-Ready binding of each (namespace, phase) gives the figure; Running none."""
    view = BindingView(clock=lambda: T0 + 700)
    view.saw(event("a", "PhoneNotFound", ready_since="2026-01-01T00:01:40Z"))  # 600 s ago
    view.saw(event("b", "PhoneNotFound", ready_since="2026-01-01T00:10:00Z"))  # 100 s ago
    view.saw(event("c", "Running", ready="True"))

    assert view.longest_not_running() == {("farm", "PhoneNotFound"): 600.0}
    assert (
        'phonefleet_bindings_not_running_longest_seconds{namespace="farm",phase="PhoneNotFound"}'
        " 600.0" in exposition(view)
    )


def test_time_to_running_is_observed_once_for_a_binding_seen_before_it_ran() -> None:
    """Pending -> Bound -> Running records creation to Ready once; a binding first seen Running
    (an operator restart) records nothing."""
    count = "phonefleet_binding_creation_to_running_seconds_count"
    total = "phonefleet_binding_creation_to_running_seconds_sum"
    before = (REGISTRY.get_sample_value(count) or 0, REGISTRY.get_sample_value(total) or 0)
    view = BindingView(clock=lambda: T0 + 1000)
    view.saw(event("new", None, kind="ADDED"))
    view.saw(event("new", "Bound"))
    view.saw(event("new", "Running", ready="True", ready_since="2026-01-01T00:00:42Z"))
    view.saw(event("new", "Running", ready="True", ready_since="2026-01-01T00:00:42Z"))
    view.saw(event("old", "Running", kind="ADDED", ready="True"))

    after = (REGISTRY.get_sample_value(count) or 0, REGISTRY.get_sample_value(total) or 0)
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == 42.0


def test_phone_ids_are_those_of_bindings_in_the_given_phases() -> None:
    """Only bindings in the asked phases name their phone."""
    view = BindingView()
    view.saw(event("a", "Running", ready="True", phone_id="1"))
    view.saw(event("b", "Conflict", phone_id="1"))
    view.saw(event("c", "Bound", phone_id="2"))
    view.saw(event("d", "Conflict", phone_id="3"))

    assert view.phone_ids({"Bound", "Running"}) == {"1", "2"}


def test_a_generic_phase_view_names_its_gauge() -> None:
    """The view the PhoneJob handler feeds exports phonefleet_jobs the same way."""
    jobs = PhaseView("phonefleet_jobs", "PhoneJobs by phase.")
    jobs.saw(event("j", "Succeeded", kind="ADDED"))
    assert 'phonefleet_jobs{namespace="farm",phase="Succeeded"} 1.0' in exposition(jobs)
