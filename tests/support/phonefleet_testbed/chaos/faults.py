"""The faults of a chaos run: a timeline drawn from the seed, then played against the real parts.

The whole timeline (when, which fault, which target, for how long) is drawn before the run from
the seed, from the plan's fixed names, never from what the cluster looks like at that moment, so a
seed always gives the same decisions. What they meet depends on timing: deleting the claim of a
phone nobody holds at that moment is a no-op, and is counted as one.

Kinds: the operator SIGKILLed and started again after a while; kube-apiserver restarted (SIGTERM
or SIGKILL); a Geelark window of outage (connections closed), HTTP 500, code 40007 (rate limited)
or code 40003 (credentials refused) on every endpoint (half of the 40003 windows with a binding
deletion in them); a PhoneClaim deleted by hand; a worker pod
deleted; a binding deleted and created again (same manifest, new uid) once it is gone; a binding
suspended and resumed; a phone stopped behind the operator's back (through the simulator's admin
API, not the Open API).
"""

from __future__ import annotations

import heapq
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from phonefleet_testbed.chaos.checker import Checker
from phonefleet_testbed.chaos.fleet import SUSPENDED_PHONE, FleetPlan
from phonefleet_testbed.chaos.operator_process import OperatorProcess
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.geelark_sim import SimulatorAdmin, seed_id
from phonefleet_testbed.waiting import wait_for

__all__ = ["KIND_WEIGHTS", "Fault", "FaultInjector", "plan_faults"]

Clock = Callable[[], float]

#: Fault kinds and how often each is drawn, relative to the others.
KIND_WEIGHTS: dict[str, int] = {
    "operator-sigkill": 3,
    "apiserver-restart": 1,
    "geelark-outage": 1,
    "geelark-http-500": 1,
    "geelark-40007-rate-limited": 1,
    "geelark-40003-auth-refused": 1,
    "claim-deleted-by-hand": 2,
    "pod-deleted": 2,
    "binding-deleted-recreated": 2,
    "binding-suspended-resumed": 2,
    "phone-stopped-behind-back": 1,
}

_GEELARK_RULES: dict[str, dict[str, object]] = {
    "geelark-outage": {"outage": True},
    "geelark-http-500": {"http_status": 500},
    "geelark-40007-rate-limited": {"code": 40007},
    "geelark-40003-auth-refused": {"code": 40003},
}

# Restarting the API server takes a few seconds and every client relists after it: at most one
# in this many seconds, so the rest of the faults still meet a working cluster.
_APISERVER_GAP = 30.0


@dataclass(frozen=True)
class Fault:
    """One fault of the timeline: ``at`` seconds into the chaos, undone ``hold`` seconds later."""

    at: float
    kind: str
    target: str = ""
    hold: float = 0.0
    detail: str = ""

    def __str__(self) -> str:
        parts = [f"{self.at:6.1f}s {self.kind}"]
        if self.target:
            parts.append(self.target)
        if self.hold:
            parts.append(f"for {self.hold:.1f}s")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)


@dataclass
class _Draw:
    """What the timeline has in force at the time being drawn."""

    operator_back: float = 0.0
    geelark_clear: float = 0.0
    apiserver_next: float = 0.0
    busy: dict[str, float] = field(default_factory=dict)


def plan_faults(rng: random.Random, plan: FleetPlan, seconds: float) -> list[Fault]:
    """The timeline of ``seconds`` of chaos: a fault every 0.5-3 s, drawn from ``rng``."""
    kinds = list(KIND_WEIGHTS)
    weights = [KIND_WEIGHTS[k] for k in kinds]
    targets = _Targets(
        bindings=[b.key for b in plan.bindings if b.phone is not None],
        toggled=[b.key for b in plan.bindings if not b.suspend and b.phone is not None],
        phones=[seed_id(n) for n in plan.phones()],
        running_phones=[seed_id(n) for n in plan.phones() if n != SUSPENDED_PHONE],
    )
    faults: list[Fault] = []
    state = _Draw()
    t = 0.0
    while True:
        t += rng.uniform(0.5, 3.0)
        if t >= seconds:
            return sorted(faults, key=lambda f: f.at)
        for _ in range(10):  # a kind the timeline cannot have now is drawn again
            fault = _draw(rng, rng.choices(kinds, weights)[0], t, state, targets)
            if fault is not None:
                faults.append(fault)
                break
        if faults and faults[-1].kind == "geelark-40003-auth-refused" and rng.random() < 0.5:
            # A deletion while Geelark refuses the credentials: the finalizer must wait.
            deletion = _draw(rng, "binding-deleted-recreated", t + 0.5, state, targets)
            if deletion is not None:
                faults.append(deletion)


@dataclass(frozen=True)
class _Targets:
    bindings: list[str]
    toggled: list[str]
    phones: list[str]
    running_phones: list[str]


def _draw(  # noqa: PLR0911 - one branch per kind
    rng: random.Random, kind: str, t: float, state: _Draw, targets: _Targets
) -> Fault | None:
    """One fault of ``kind`` at ``t``, or None if the timeline cannot have it then."""
    if kind == "operator-sigkill":
        if t < state.operator_back:
            return None
        hold = rng.uniform(0.5, 6.0)
        state.operator_back = t + hold
        return Fault(t, kind, hold=hold)
    if kind == "apiserver-restart":
        if t < state.apiserver_next:
            return None
        state.apiserver_next = t + _APISERVER_GAP
        return Fault(t, kind, detail=rng.choice(["SIGTERM", "SIGKILL"]))
    if kind in _GEELARK_RULES:
        if t < state.geelark_clear:
            return None
        hold = rng.uniform(2.0, 10.0)
        state.geelark_clear = t + hold
        return Fault(t, kind, hold=hold)
    if kind == "claim-deleted-by-hand":
        return Fault(t, kind, rng.choice(targets.phones))
    if kind == "pod-deleted":
        return Fault(t, kind, rng.choice(targets.bindings))
    if kind == "phone-stopped-behind-back":
        return Fault(t, kind, rng.choice(targets.running_phones))
    suspending = kind == "binding-suspended-resumed"
    key = rng.choice(targets.toggled if suspending else targets.bindings)
    if t < state.busy.get(key, 0.0):
        return None
    hold = rng.uniform(1.0, 10.0)
    state.busy[key] = t + hold + 5.0  # a deleted binding may take a while to go before re-creation
    return Fault(t, kind, key, hold=hold)


@dataclass(order=True)
class _Action:
    due: float
    seq: int
    label: str = field(compare=False)
    run: Callable[[], bool] = field(compare=False)
    undo: bool = field(compare=False, default=False)
    """Runs even after the chaos ended (it puts something back)."""
    clamp: bool = field(compare=False, default=False)
    """Runs at the chaos' end at the latest."""


class FaultInjector:
    """Plays a timeline; every fault is undone (at its time, or when the chaos ends)."""

    def __init__(
        self,
        faults: list[Fault],
        *,
        plan: FleetPlan,
        plane: ControlPlane,
        admin: SimulatorAdmin,
        operator: OperatorProcess,
        checker: Checker,
        clock: Clock,
        say: Callable[[str], None],
    ) -> None:
        self.faults = faults
        self._plan = plan
        self.plane = plane
        self._admin = admin
        self._operator = operator
        self._checker = checker
        self._clock = clock
        self._say = say
        self._queue: list[_Action] = []
        self._seq = 0
        self.injected: Counter[str] = Counter()
        self.no_ops: Counter[str] = Counter()
        self.incidents: list[str] = []
        self.revived: Counter[str] = Counter()
        self._killed = False
        self._starting: int | None = None
        self._recreating: set[str] = set()
        self._give_up = float("inf")
        self._restore_seconds = 0.0

    # ------------------------------------------------------------------ playing

    def run(self, start: float, end: float, *, restore_seconds: float = 120.0) -> None:
        """Play the timeline from clock time ``start``; at ``end`` undo whatever is still on.

        Undoing may wait for the operator (a deleted binding is created again once its finalizer
        is done); after ``restore_seconds`` past ``end`` that counts as an incident.
        """
        self._give_up = end + restore_seconds
        self._restore_seconds = restore_seconds
        for fault in self.faults:
            self._push(start + fault.at, str(fault), self._begin(fault))
        while self._queue:
            action = self._queue[0]
            if action.due > end and not action.undo:
                heapq.heappop(self._queue)
                continue
            due = min(action.due, end) if action.clamp else action.due
            wait = due - self._clock()
            if wait > 0:
                time.sleep(min(wait, 0.5))  # pacing the timeline, not waiting for a condition
                self.supervise()
                continue
            heapq.heappop(self._queue)
            self.supervise()
            action.run()

    def _push(
        self,
        due: float,
        label: str,
        run: Callable[[], bool],
        *,
        undo: bool = False,
        clamp: bool = False,
    ) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Action(due, self._seq, label, run, undo, clamp))

    def supervise(self) -> None:
        """Start exited control-plane components again (as a cluster would) and watch the
        operator: its blind window ends once a restarted one answers; one that exits by itself
        (not SIGKILLed by us) is an incident, and is started again."""
        for name in self.plane.restart_exited():
            self.revived[name] += 1
            self._say(f"{name} had exited: started it again")
        if not self._operator.starts or self._killed:
            return
        if not self._operator.is_running():
            self.incidents.append(
                f"the operator exited by itself at {self._clock():.1f}s:\n"
                f"{self._operator.log_tail(30)}"
            )
            self._operator.start()
            if self._starting is None:
                self._starting = self._checker.blind_begin(
                    "operator down", self._clock(), kubernetes=True
                )
        if self._starting is not None and self._operator.is_healthy():
            self._checker.blind_end(self._starting, self._clock())
            self._starting = None

    def wait_operator(self, timeout: float = 90.0) -> None:
        """Wait until the operator runs and answers (after the chaos, before settling)."""

        def answering() -> bool:
            self.supervise()
            return self._starting is None and self._operator.is_healthy()

        wait_for(
            answering, timeout, interval=0.2, message="the operator to answer after the faults"
        )

    def _begin(self, fault: Fault) -> Callable[[], bool]:
        def run() -> bool:
            done = self._apply(fault)
            (self.injected if done else self.no_ops)[fault.kind] += 1
            self._say(f"{'injected' if done else 'no-op   '} {fault}")
            return done

        return run

    def _later(self, fault: Fault, label: str, run: Callable[[], bool]) -> None:
        self._push(self._clock() + fault.hold, f"{label} ({fault})", run, undo=True, clamp=True)

    # ------------------------------------------------------------------ the kinds

    def _apply(self, fault: Fault) -> bool:  # noqa: PLR0911 - one branch per kind
        kind = fault.kind
        if kind == "operator-sigkill":
            return self._kill_operator(fault)
        if kind == "apiserver-restart":
            began = self._clock()
            token = self._checker.blind_begin("API server restart", began, kubernetes=True)
            self.plane.restart_apiserver(kill=fault.detail == "SIGKILL", timeout=120)
            self._checker.blind_end(token, self._clock())
            self._say(f"kube-apiserver ready again after {self._clock() - began:.1f}s")
            return True
        if kind in _GEELARK_RULES:
            return self._geelark_window(fault)
        if kind == "claim-deleted-by-hand":
            # Told first: the checker must know before its watch can see the claim go.
            self._checker.force_released(fault.target, self._clock())
            return self._deleted("phoneclaim", fault.target)
        if kind == "pod-deleted":
            planned = self._plan.by_key(fault.target)
            return self._deleted("pod", f"{planned.name}-worker", planned.namespace)
        if kind == "binding-deleted-recreated":
            return self._delete_binding(fault)
        if kind == "binding-suspended-resumed":
            return self._suspend(fault)
        if kind == "phone-stopped-behind-back":
            if self._admin.phone(fault.target).status == 2:
                return False
            self._admin.update_phone(fault.target, status=2)
            return True
        raise ValueError(f"unknown fault kind {kind}")

    def _kill_operator(self, fault: Fault) -> bool:
        if self._killed:  # still down: the timeline runs late and its restart has not come yet
            return False
        # A restarted operator that has not answered yet is still in its blind window: extend it.
        token = self._starting
        if token is None:
            token = self._checker.blind_begin("operator down", self._clock(), kubernetes=True)
        self._starting = None
        self._killed = True
        self._operator.kill()

        def restart() -> bool:
            self._operator.start()
            self._killed = False
            self._starting = token  # the blind window ends once it answers (see supervise)
            return True

        self._later(fault, "restart the operator", restart)
        return True

    def _geelark_window(self, fault: Fault) -> bool:
        token = self._checker.blind_begin(fault.kind, self._clock())
        self._admin.set_faults("*", **_GEELARK_RULES[fault.kind])  # type: ignore[arg-type]

        def lift() -> bool:
            self._admin.clear_faults()
            self._checker.blind_end(token, self._clock())
            return True

        self._later(fault, "lift the Geelark fault", lift)
        return True

    def _deleted(self, kind: str, name: str, namespace: str | None = None) -> bool:
        args = ["delete", kind, name, "--wait=false"]
        if namespace:
            args += ["-n", namespace]
        result = self.plane.kubectl(*args, check=False)
        if result.returncode != 0 and "NotFound" not in result.stderr:
            self._say(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.returncode == 0

    def _delete_binding(self, fault: Fault) -> bool:
        planned = self._plan.by_key(fault.target)
        # Still being deleted (the timeline runs late, or the operator was down): one re-creation.
        if planned.key in self._recreating:
            return False
        if not self._deleted("phonebinding", planned.name, planned.namespace):
            return False
        self._recreating.add(planned.key)

        def recreate() -> bool:
            result = self.plane.kubectl(
                "create", "-f", "-", input_text=json.dumps(planned.manifest()), check=False
            )
            if result.returncode == 0:
                self._recreating.discard(planned.key)
            else:
                if self._clock() > self._give_up:
                    self.incidents.append(
                        f"{planned.key} was still being deleted {self._restore_seconds:.0f}s "
                        f"after the faults stopped (its finalizer never finished): "
                        f"{result.stderr.strip()}"
                    )
                    return False
                # Still terminating (its finalizer waits for the operator): try again shortly.
                self._push(self._clock() + 0.5, f"re-create {planned.key}", recreate, undo=True)
                return False
            self._say(f"re-created {planned.key}")
            return True

        self._later(fault, f"re-create {planned.key}", recreate)
        return True

    def _suspend(self, fault: Fault) -> bool:
        planned = self._plan.by_key(fault.target)
        if planned.key in self._recreating or not self._patch_suspend(
            planned.namespace, planned.name, True
        ):
            return False

        def resume() -> bool:
            return self._patch_suspend(planned.namespace, planned.name, False)

        self._later(fault, f"resume {planned.key}", resume)
        return True

    def _patch_suspend(self, namespace: str, name: str, suspend: bool) -> bool:
        patch = json.dumps({"spec": {"suspend": suspend}})
        result = self.plane.kubectl(
            "patch", "phonebinding", name, "-n", namespace, "--type=merge", "-p", patch, check=False
        )
        return result.returncode == 0
