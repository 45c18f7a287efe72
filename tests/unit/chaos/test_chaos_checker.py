"""The chaos checker fails on violating sequences and stays quiet on the legitimate ones nearby."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phonefleet_testbed.chaos.checker import Checker, Grace, PhoneReading, PoolLimit

Obj = dict[str, Any]
PHONE = "600000000000000001"
GRACE = Grace(release_grace=10.0, running_off_grace=20.0)


@dataclass
class World:
    """The API server as the checker's fresh reads see it (a ClusterReader)."""

    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    claims: dict[str, Obj] = field(default_factory=dict)

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self.pods.get((namespace, name))

    def claim(self, phone_id: str) -> Obj | None:
        return self.claims.get(phone_id)

    def put_pod(self, pod: Obj) -> Obj:
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        return pod

    def put_claim(self, claim: Obj) -> Obj:
        self.claims[claim["metadata"]["name"]] = claim
        return claim


def make_pod(binding: str, owner_uid: str, *, uid: str = "", deleting: bool = False) -> Obj:
    meta: Obj = {
        "namespace": "ns",
        "name": f"{binding}-worker",
        "uid": uid or f"pod-of-{owner_uid}",
        "labels": {"phonefleet.dev/phone-id": PHONE},
        "ownerReferences": [{"kind": "PhoneBinding", "uid": owner_uid, "controller": True}],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


def make_claim(holder: str, holder_uid: str, *, uid: str = "claim-1", revision: int = 1) -> Obj:
    return {
        "metadata": {"name": PHONE, "uid": uid, "resourceVersion": str(revision)},
        "spec": {"holder": {"namespace": "ns", "name": holder, "uid": holder_uid}},
    }


def make_binding(
    name: str, uid: str, phase: str, *, deleting: bool = False, revision: int = 1
) -> Obj:
    meta: Obj = {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": str(revision)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "phone": {"id": PHONE}}}


def holder_with_its_pod() -> tuple[World, Checker, Obj]:
    """alpha (uid-a) holds PHONE since 1.0 (its claim is returned) and has its pod since 2.0."""
    world = World()
    checker = Checker(world, GRACE)
    claim = world.put_claim(make_claim("alpha", "uid-a"))
    checker.claim_event("ADDED", claim, 1.0)
    checker.pod_event("ADDED", world.put_pod(make_pod("alpha", "uid-a")), 2.0)
    return world, checker, claim


def invariants(checker: Checker) -> list[str]:
    return [v.invariant for v in checker.violations]


def test_two_live_pods_for_one_phone_break_i1() -> None:
    """A second live pod for the same phone is a violation at the event that shows it."""
    checker = Checker(World(), GRACE)
    checker.pod_event("ADDED", make_pod("alpha", "uid-a"), 1.0)
    checker.pod_event("ADDED", make_pod("bravo", "uid-b"), 2.0)
    assert invariants(checker) == ["I1"]
    assert "ns/alpha-worker, ns/bravo-worker" in checker.violations[0].detail


def test_the_same_two_live_pods_are_reported_once() -> None:
    """Later events that still show the same pair add no second violation."""
    checker = Checker(World(), GRACE)
    checker.pod_event("ADDED", make_pod("alpha", "uid-a"), 1.0)
    checker.pod_event("ADDED", make_pod("bravo", "uid-b"), 2.0)
    checker.pod_event("MODIFIED", make_pod("bravo", "uid-b"), 3.0)
    assert invariants(checker) == ["I1"]


def test_a_relist_showing_two_live_pods_for_one_phone_breaks_i1() -> None:
    """A relist is a snapshot like any other: two live pods in it are a violation."""
    checker = Checker(World(), GRACE)
    checker.pods_listed([make_pod("alpha", "uid-a"), make_pod("bravo", "uid-b")], 1.0)
    assert invariants(checker) == ["I1"]


def test_a_terminating_pod_beside_the_next_holder_pod_keeps_i1() -> None:
    """A pod with a deletionTimestamp is no longer live, whatever the kubelet still does."""
    checker = Checker(World(), GRACE)
    checker.pod_event("ADDED", make_pod("alpha", "uid-a"), 1.0)
    checker.pod_event("MODIFIED", make_pod("alpha", "uid-a", deleting=True), 2.0)
    checker.pod_event("ADDED", make_pod("bravo", "uid-b"), 3.0)
    assert checker.violations == []


def test_a_live_pod_whose_binding_does_not_hold_the_claim_breaks_i2() -> None:
    """Reads confirm it: the pod lives, the claim names another binding, the pod still lives."""
    world = World()
    checker = Checker(world, GRACE)
    claim = world.put_claim(make_claim("bravo", "uid-b"))
    checker.claim_event("ADDED", claim, 1.0)
    checker.pod_event("ADDED", world.put_pod(make_pod("alpha", "uid-a")), 2.0)
    checker.evaluate(2.1)
    assert invariants(checker) == ["I2"]


def test_a_pod_event_ahead_of_its_claim_event_is_no_violation() -> None:
    """The pods watch may run ahead of the claims watch; the read of the claim settles it."""
    world = World()
    checker = Checker(world, GRACE)
    world.put_claim(make_claim("alpha", "uid-a"))
    checker.pod_event("ADDED", world.put_pod(make_pod("alpha", "uid-a")), 1.0)
    checker.evaluate(1.1)
    assert checker.violations == []
    assert checker.stats["I2 suspects"] == 1


def test_a_claim_deleted_by_hand_leaves_the_old_holder_pod_a_bounded_grace() -> None:
    """Inside the grace the holder's pod may still live; past it, the same state is a violation."""
    world, checker, claim = holder_with_its_pod()
    checker.force_released(PHONE, 5.0)
    del world.claims[PHONE]
    checker.claim_event("DELETED", claim, 5.1)
    checker.evaluate(6.0)
    assert checker.violations == []
    checker.evaluate(5.0 + GRACE.release_grace + 1)
    assert invariants(checker) == ["I2"]


def test_the_release_grace_runs_from_the_operator_coming_back() -> None:
    """An operator that was down when the claim went could not react: its grace starts later."""
    world = World()
    checker = Checker(world, GRACE)
    checker.pod_event("ADDED", world.put_pod(make_pod("alpha", "uid-a")), 1.0)
    down = checker.blind_begin("operator down", 2.0, kubernetes=True)
    checker.force_released(PHONE, 3.0)
    checker.evaluate(3.0 + GRACE.release_grace + 5)
    assert checker.violations == []
    checker.blind_end(down, 30.0)
    checker.evaluate(31.0)
    assert checker.violations == []
    checker.evaluate(30.0 + GRACE.release_grace + 1)
    assert invariants(checker) == ["I2"]


def test_an_open_api_stop_under_the_holder_live_pod_breaks_i3() -> None:
    """The stop counter rises between two polls while the holder's pod lived before and after."""
    _, checker, _ = holder_with_its_pod()
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 3.0)
    checker.phones_polled([PhoneReading(PHONE, status=2, stop_count=1)], 3.3)
    checker.evaluate(3.4)
    assert "I3" in invariants(checker)


def test_a_stop_after_the_holder_deleted_its_pod_keeps_i3() -> None:
    """Suspension and deletion remove the pod first; the stop that follows is legitimate."""
    world, checker, _ = holder_with_its_pod()
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 3.0)
    world.put_pod(make_pod("alpha", "uid-a", deleting=True))
    checker.phones_polled([PhoneReading(PHONE, status=2, stop_count=1)], 3.3)
    checker.evaluate(3.4)
    assert checker.violations == []


def test_a_running_binding_whose_phone_is_off_breaks_i4_after_the_grace() -> None:
    """Within the grace the operator may not have looked yet; past it, Running is a lie."""
    checker = Checker(World(), GRACE)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running"), 1.0)
    checker.phones_polled([PhoneReading(PHONE, status=2, stop_count=0)], 2.0)
    checker.evaluate(2.0 + GRACE.running_off_grace - 1)
    assert checker.violations == []
    checker.evaluate(2.0 + GRACE.running_off_grace + 1)
    assert invariants(checker) == ["I4"]


def test_a_blind_window_holds_the_i4_clock_and_restarts_it() -> None:
    """While Geelark fails the operator keeps the phase on purpose; the clock restarts after."""
    checker = Checker(World(), GRACE)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running"), 1.0)
    checker.phones_polled([PhoneReading(PHONE, status=2, stop_count=0)], 2.0)
    outage = checker.blind_begin("geelark-outage", 3.0)
    checker.evaluate(40.0)
    assert checker.violations == []
    checker.blind_end(outage, 41.0)
    checker.evaluate(41.0 + GRACE.running_off_grace - 1)
    assert checker.violations == []
    checker.evaluate(41.0 + GRACE.running_off_grace + 1)
    assert invariants(checker) == ["I4"]


def test_a_binding_being_deleted_is_exempt_from_i4() -> None:
    """A deleted binding's status is no longer maintained; its finalizer stops the phone."""
    checker = Checker(World(), GRACE)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running", deleting=True), 1.0)
    checker.phones_polled([PhoneReading(PHONE, status=2, stop_count=0)], 2.0)
    checker.evaluate(100.0)
    assert checker.violations == []


def test_a_holder_reported_conflict_while_its_claim_stayed_breaks_i5() -> None:
    """Running, then Conflict, while the claim created before the Running status still names it."""
    world = World()
    checker = Checker(world, GRACE)
    world.put_claim(make_claim("alpha", "uid-a", revision=10))
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running", revision=20), 1.0)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Conflict", revision=30), 2.0)
    checker.evaluate(2.1)
    assert invariants(checker) == ["I5"]


def test_conflict_after_the_claim_was_taken_by_another_keeps_i5() -> None:
    """A claim deleted by hand and taken by another binding: Conflict is the truth."""
    world = World()
    checker = Checker(world, GRACE)
    world.put_claim(make_claim("bravo", "uid-b", uid="claim-2", revision=25))
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running", revision=20), 1.0)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Conflict", revision=30), 2.0)
    checker.evaluate(2.1)
    assert checker.violations == []


def test_conflict_then_a_new_claim_of_its_own_keeps_i5() -> None:
    """Conflict, then the binding claims the phone again: the new claim is younger than Running."""
    world = World()
    checker = Checker(world, GRACE)
    world.put_claim(make_claim("alpha", "uid-a", uid="claim-3", revision=35))
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running", revision=20), 1.0)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Conflict", revision=30), 2.0)
    checker.evaluate(2.1)
    assert checker.violations == []


def deleting_holder(world: World, checker: Checker) -> None:
    """alpha holds the phone, which runs; then alpha's deletion begins."""
    checker.claim_event("ADDED", world.put_claim(make_claim("alpha", "uid-a")), 1.0)
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 1.5)
    checker.binding_event("MODIFIED", make_binding("alpha", "uid-a", "Running", deleting=True), 2.0)


def test_a_deleted_holder_gone_with_its_phone_still_running_breaks_i6() -> None:
    """The finalizer let the binding go without a stop: the phone is left billing."""
    world = World()
    checker = Checker(world, GRACE)
    deleting_holder(world, checker)
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 2.5)
    checker.binding_event("DELETED", make_binding("alpha", "uid-a", "Running", deleting=True), 3.0)
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 3.5)
    assert invariants(checker) == ["I6"]


def test_a_deleted_holder_that_stopped_its_phone_keeps_i6() -> None:
    """The stop counter rose before the first poll after the binding went, even if the next
    holder started the phone again at once."""
    world = World()
    checker = Checker(world, GRACE)
    deleting_holder(world, checker)
    checker.binding_event("DELETED", make_binding("alpha", "uid-a", "Running", deleting=True), 3.0)
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=1)], 3.5)
    assert checker.violations == []
    assert checker.stats["checks I6"] == 1


def test_a_deleted_holder_whose_claim_was_deleted_by_hand_keeps_i6() -> None:
    """After a force-release the binding no longer holds the phone: stopping it is not its job."""
    world = World()
    checker = Checker(world, GRACE)
    deleting_holder(world, checker)
    checker.force_released(PHONE, 2.2)
    checker.binding_event("DELETED", make_binding("alpha", "uid-a", "Running", deleting=True), 3.0)
    checker.phones_polled([PhoneReading(PHONE, status=0, stop_count=0)], 3.5)
    assert checker.violations == []


# ---------------------------------------------------------------- pools (I7, I8)

POOL = PoolLimit("acme", 2, frozenset({"p1", "p2", "p3"}))


@dataclass(frozen=True)
class Change:
    """One entry of the simulator's power journal."""

    seq: int
    id: str
    on: bool


def journal(*changes: tuple[str, bool]) -> list[Change]:
    return [Change(seq, phone, on) for seq, (phone, on) in enumerate(changes, start=1)]


def make_pool(holders: int, *, limit: int = 2, name: str = "acme", revision: int = 1) -> Obj:
    return {
        "metadata": {"name": name, "resourceVersion": str(revision)},
        "spec": {"maxRunning": limit},
        "status": {
            "holders": [
                {"namespace": "ns", "name": f"b{n}", "uid": f"u{n}"} for n in range(holders)
            ]
        },
    }


def test_a_pool_version_counting_more_holders_than_its_limit_breaks_i7() -> None:
    """A watched version of the pool whose ledger exceeds maxRunning is a violation."""
    checker = Checker(World(), GRACE, pools=[POOL])
    checker.pools_listed([make_pool(2)], 1.0)
    checker.pool_event("MODIFIED", make_pool(1, revision=2), 2.0)
    assert invariants(checker) == []
    checker.pool_event("MODIFIED", make_pool(3, revision=3), 3.0)
    assert invariants(checker) == ["I7"]
    assert "counts 3 holders against maxRunning 2" in checker.violations[0].detail
    assert checker.largest_ledger["acme"] == 3


def test_pools_of_other_runs_are_not_judged() -> None:
    """A pool the run did not make (another test's) is none of the checker's business."""
    checker = Checker(World(), GRACE, pools=[POOL])
    checker.pool_event("ADDED", make_pool(5, name="someone-else"), 1.0)
    assert invariants(checker) == []


def test_a_recorded_overrun_of_billed_phones_breaks_i8_once() -> None:
    """Replaying the journal: a third phone of a pool of 2 going on is an overrun, reported once
    however many changes it lasts, and again only after it ended and came back."""
    checker = Checker(World(), GRACE, pools=[POOL])
    checker.power_changes(journal(("p1", True), ("p2", True), ("p3", True), ("p3", False)), 1.0)
    assert invariants(checker) == ["I8"]
    assert "3 phones on (billed) against maxRunning 2 at power change 3" in (
        checker.violations[0].detail
    )
    more = [Change(5, "p3", True), Change(6, "p3", False), Change(7, "p1", False)]
    checker.power_changes(more, 2.0)
    assert invariants(checker) == ["I8", "I8"]
    assert checker.largest_billed["acme"] == 3


def test_a_slot_handed_over_in_order_stays_within_the_limit() -> None:
    """A stop before the next start (the operator's order) never counts above the limit; phones
    of no pool and entries replayed twice (overlapping polls) do not count."""
    checker = Checker(World(), GRACE, pools=[POOL])
    changes = journal(
        ("p1", True), ("p2", True), ("other", True), ("p1", False), ("p3", True), ("p2", False)
    )
    checker.power_changes(changes[:4], 1.0)
    checker.power_changes(changes, 2.0)  # the first four again, then the rest
    assert invariants(checker) == []
    assert checker.largest_billed["acme"] == 2
    assert checker.stats["power changes replayed"] == 6


def test_a_gap_in_the_power_journal_is_reported() -> None:
    """Entries the simulator dropped make the count unknowable: the checker says so."""
    checker = Checker(World(), GRACE, pools=[POOL])
    checker.power_changes([Change(1, "p1", True), Change(4, "p2", True)], 1.0)
    assert invariants(checker) == ["I8"]
    assert "skipped entries 2-3" in checker.violations[0].detail
