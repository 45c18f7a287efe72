"""Billing leaks: which phones are billed with no binding, and for how long they were seen so."""

from __future__ import annotations

from typing import Any

from phonefleet_operator.geelark import Phone, PhoneStatus
from phonefleet_operator.services.billing import (
    CLAIMING_PHASES,
    LeakTracker,
    held_phone_ids,
    holders,
    how_to_stop,
    unbound_running,
)
from phonefleet_operator.telemetry.phases import BindingView


def phone(id_: str, status: PhoneStatus, name: str = "") -> Phone:
    return Phone(id=id_, serial_name=name or f"p-{id_}", status=status)


def binding(uid: str, phase: str, phone_id: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if phone_id:
        status["phone"] = {"id": phone_id}
    return {"metadata": {"uid": uid}, "status": status}


def claim(phone_id: str, holder_uid: str) -> dict[str, Any]:
    return {"metadata": {"name": phone_id}, "spec": {"holder": {"uid": holder_uid}}}


def test_only_billed_phones_that_nobody_holds_are_leaks() -> None:
    """Running and starting phones count; stopped and expired ones, and held ones, do not."""
    phones = [
        phone("1", PhoneStatus.RUNNING),
        phone("2", PhoneStatus.STARTING),
        phone("3", PhoneStatus.SHUT_DOWN),
        phone("4", PhoneStatus.EXPIRED),
        phone("5", PhoneStatus.RUNNING),
    ]
    assert [p.id for p in unbound_running(phones, held={"5"})] == ["1", "2"]


def test_a_phone_is_held_by_a_live_holder_or_by_a_binding_that_runs_it() -> None:
    """A claim of a deleted binding holds nothing; a Bound or Running binding's phone is held
    even before its claim shows up; a Conflict binding's phone is not held by it."""
    bindings = [
        binding("live", "Running", "10"),
        binding("booting", "Bound", "11"),
        binding("waiting", "Conflict", "12"),
    ]
    claims = [claim("10", "live"), claim("13", "deleted-binding")]
    assert held_phone_ids(bindings, claims) == {"10", "11"}


def test_leaks_are_timed_from_their_first_sighting_and_forgotten_once_gone() -> None:
    """A phone seen leaking at 0 and 300 has leaked 300 s; one that stops is dropped."""
    tracker = LeakTracker()
    a, b = phone("1", PhoneStatus.RUNNING), phone("2", PhoneStatus.RUNNING)
    tracker.update([a, b], now=0.0)
    found = tracker.update([a], now=300.0)
    assert [(f.phone.id, f.seen_for_seconds) for f in found] == [("1", 300.0)]
    assert tracker.first_seen == {"1": 0.0}


def test_the_report_says_how_to_stop_the_phones_and_that_we_never_do() -> None:
    """The sentence names the command with the ids."""
    text = how_to_stop(["1", "2"])
    assert "phonefleet phones stop 1 2" in text
    assert "never stops" in text


def test_a_phone_billed_while_its_binding_is_suspended_is_reported_naming_the_binding() -> None:
    """A Suspended binding keeps its claim with its phone meant off: the phone still running
    (its attempt being fenced, or started behind the operator's back) is billed and reported,
    and the report names the binding and why; a binding still setting up (no phase yet, or
    Pending) runs the phone its claim names."""
    suspended = binding("paused", "Suspended")
    suspended["metadata"].update(namespace="farm", name="insta-042")
    suspended["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "FencingAttempt"}
    ]
    bindings = [suspended, binding("new", "Pending"), {"metadata": {"uid": "fresh"}}]
    claims = [claim("20", "paused"), claim("21", "new"), claim("22", "fresh")]
    phones = [phone(i, PhoneStatus.RUNNING) for i in ("20", "21", "22")]

    held = held_phone_ids(bindings, claims)

    assert [p.id for p in unbound_running(phones, held)] == ["20"]
    assert holders(bindings, claims)["20"] == "farm/insta-042 (Suspended: FencingAttempt)"


def test_the_operators_view_counts_a_suspended_bindings_claim_as_running_nothing() -> None:
    """The operator's billing check (services/monitoring.py) counts a claim as running its
    phone only when its holder's phase runs it, read from the bindings watch."""
    view = BindingView()
    for uid, phase in (("paused", "Suspended"), ("up", "Running"), ("new", None)):
        body = {"metadata": {"uid": uid, "namespace": "farm", "name": uid}, "status": {}}
        if phase:
            body["status"]["phase"] = phase
        view.saw({"type": "MODIFIED", "object": body})

    assert view.uids(CLAIMING_PHASES) == {"up", "new"}
