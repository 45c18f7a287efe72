"""One chaos run on a real control plane: set up, inject faults, settle, delete, report.

The operator runs as production runs it (``phonefleet-operator``, configured by ``PHONEFLEET_*``,
authenticated as its own ServiceAccount with ``manifests/rbac``); the Geelark simulator serves 20
phones. The checker watches from the first binding to the last deletion. A pooled run
(``pooled=True``, see ``pooled``) puts the phones into three PhonePools first, requires pools, and
has the checker count every pool against its limit as well.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonefleet_testbed.chaos.checker import Checker, PoolLimit, Violation
from phonefleet_testbed.chaos.faults import KIND_WEIGHTS, Fault, FaultInjector, plan_faults
from phonefleet_testbed.chaos.fleet import PHONES, FleetPlan, plan_fleet, settle_problems
from phonefleet_testbed.chaos.observers import KubeReader, Observers
from phonefleet_testbed.chaos.operator_process import OperatorProcess
from phonefleet_testbed.chaos.pooled import (
    CLIENT_LABEL,
    plan_pooled_fleet,
    pooled_settle_problems,
)
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    SimulatorAdmin,
    SimulatorConfig,
    seed_id,
)
from phonefleet_testbed.rbac import operator_kubeconfig
from phonefleet_testbed.scenarios import operator_env
from phonefleet_testbed.waiting import WaitTimeout, wait_for

__all__ = ["ChaosReport", "run_chaos"]

Obj = dict[str, Any]

#: Settings of the operator under chaos, on top of the scenario tests' short rechecks.
_OPERATOR_SETTINGS = {
    # A binding in Error (credentials refused for a window) looks again after 5 s, not 300 s:
    # the run must settle within minutes after the credentials work again.
    "PHONEFLEET_ERROR_RECHECK_SECONDS": "5",
    # Sweeps of orphaned claims happen within the run, not once a minute.
    "PHONEFLEET_ORPHAN_SWEEP_SECONDS": "10",
}
# The scenario tests raise the pod poll to 300 s to prove the pods watch alone suffices; under
# watch gaps the production fallback (10 s) is what a user runs, so it stays.
_DROPPED_SETTINGS = ("PHONEFLEET_POD_POLL_SECONDS",)


@dataclass
class ChaosReport:
    """What a run did and found."""

    seed: int
    seconds: float
    plan: FleetPlan
    faults: list[Fault]
    without: frozenset[str] = frozenset()
    injected: Counter[str] = field(default_factory=Counter)
    no_ops: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    settle_problems: list[str] = field(default_factory=list)
    cleanup_problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    geelark: str = ""
    revived: Counter[str] = field(default_factory=Counter)
    operator_log: Path | None = None
    pools: list[str] = field(default_factory=list)
    """Per pool of a pooled run: its limit and the largest counts the checker saw."""

    @property
    def failed(self) -> bool:
        """Whether anything the test checks went wrong."""
        return bool(
            self.violations or self.incidents or self.settle_problems or self.cleanup_problems
        )

    def summary(self) -> str:
        """The seed, the faults by kind, the counts checked and whatever failed."""
        seconds = "--chaos-pool-seconds" if self.plan.pools else "--chaos-seconds"
        rerun = f"--chaos-seed {self.seed} {seconds} {self.seconds:g}"
        if self.without:
            rerun += f" --chaos-without {','.join(sorted(self.without))}"
        lines = [
            f"chaos seed {self.seed}: {self.seconds:g} s of faults "
            f"(re-run: pytest tests/integration/chaos {rerun}"
            + (" -k pool" if self.plan.pools else " -k 'not pool'")
            + ")",
            "phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()),
            f"faults injected: {sum(self.injected.values())} "
            + _counts(self.injected)
            + (f"; no-ops: {_counts(self.no_ops)}" if self.no_ops else ""),
            f"checked: {_counts(self.stats)}",
            f"Geelark simulator: {self.geelark}",
            f"control-plane components that exited and were started again: {_counts(self.revived)}",
            *self.pools,
        ]
        sections = (
            ("VIOLATIONS", [str(v) for v in self.violations]),
            ("INCIDENTS", self.incidents),
            ("NOT SETTLED", self.settle_problems),
            ("LEFT BEHIND", self.cleanup_problems),
        )
        for title, items in sections:
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines += [f"  {item}" for item in items]
        if self.failed and self.operator_log is not None:
            lines.append(f"operator log: {self.operator_log}")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


class _Clock:
    """Seconds since the run began (monotonic): the one time base of the checker and faults."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self._origin


def run_chaos(
    plane: ControlPlane,
    *,
    seed: int,
    seconds: float,
    work_dir: Path,
    say: Callable[[str], None],
    without: frozenset[str] = frozenset(),
    pooled: bool = False,
) -> ChaosReport:
    """Run the whole scenario on ``plane`` and return what happened (it raises only on bugs of
    the harness itself; everything the operator gets wrong is in the report)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible choices, not secrets
    clock = _Clock()
    suffix = uuid.uuid4().hex[:6]
    if pooled:
        plan = plan_pooled_fleet(rng, suffix)
    else:
        plan = plan_fleet(rng, (f"chaos-a-{suffix}", f"chaos-b-{suffix}"))
    unknown = without - set(KIND_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(KIND_WEIGHTS)}")
    # Drawn in full, then filtered: the faults that remain are the seed's, unchanged.
    faults = [f for f in plan_faults(rng, plan, seconds) if f.kind not in without]
    report = ChaosReport(seed=seed, seconds=seconds, plan=plan, faults=faults, without=without)

    def log(text: str) -> None:
        say(f"[chaos {clock():6.1f}s] {text}")

    log(f"seed {seed}; {len(plan.bindings)} bindings over {PHONES} phones:\n{plan.describe()}")
    install_crds(plane)
    credentials = operator_kubeconfig(plane)
    for namespace in plan.namespaces:
        plane.kubectl("create", "namespace", namespace)
    for pool in plan.pools:
        if pool.selector:
            for namespace in pool.namespaces:
                plane.kubectl("label", "namespace", namespace, f"{CLIENT_LABEL}={pool.name}")

    def service_accounts() -> bool:
        return all(
            plane.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0
            for ns in plan.namespaces
        )

    # Pods are refused until the service-account controller has made "default".
    wait_for(service_accounts, 60, message="ServiceAccount default in the namespaces")
    config = SimulatorConfig(phones=PHONES, boot_seconds=1.0, adb_enable_seconds=0.3)
    try:
        with GeelarkSimulator(config) as simulator:
            _pool_phones(plane, SimulatorAdmin(simulator.base_url), plan)
            _run(plane, simulator, credentials, plan, report, clock, work_dir, log)
    finally:
        for namespace in plan.namespaces:
            plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        # Cluster-scoped: a pool left behind would turn tenancy on for every later test.
        for pool in plan.pools:
            plane.kubectl("delete", "phonepool", pool.name, "--ignore-not-found", check=False)
    return report


def _pool_phones(plane: ControlPlane, admin: SimulatorAdmin, plan: FleetPlan) -> None:
    """Give each pool's phones its simulator group or tag, and apply the pools."""
    with closing(admin):
        for pool in plan.pools:
            for phone in pool.phones:
                admin.update_phone(
                    seed_id(phone),
                    group_name=pool.group,
                    tags=[pool.tag] if pool.tag else None,
                )
    if plan.pools:
        items = [pool.manifest(CLIENT_LABEL) for pool in plan.pools]
        plane.kubectl(
            "apply",
            "-f",
            "-",
            input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )


def _run(  # noqa: PLR0917 - the run's parts, handed over once
    plane: ControlPlane,
    simulator: GeelarkSimulator,
    credentials: Path,
    plan: FleetPlan,
    report: ChaosReport,
    clock: _Clock,
    work_dir: Path,
    log: Callable[[str], None],
) -> None:
    env = {**operator_env(plane, simulator), **_OPERATOR_SETTINGS, "KUBECONFIG": str(credentials)}
    for name in _DROPPED_SETTINGS:
        env.pop(name, None)
    if plan.pools:
        env["PHONEFLEET_REQUIRE_POOLS"] = "true"
    operator = OperatorProcess(env, work_dir)
    report.operator_log = operator.log_path
    reader = KubeReader(plane.kubeconfig)
    checker = Checker(
        reader,
        pools=[PoolLimit(p.name, p.max_running, p.phone_ids) for p in plan.pools],
    )
    observers = Observers(
        checker,
        kubeconfig=plane.kubeconfig,
        simulator_url=simulator.base_url,
        namespaces=plan.namespaces,
        clock=clock,
        pools=[p.name for p in plan.pools],
    )
    admin = SimulatorAdmin(simulator.base_url)
    injector = FaultInjector(
        report.faults,
        plan=plan,
        plane=plane,
        admin=admin,
        operator=operator,
        checker=checker,
        clock=clock,
        say=log,
    )
    began = clock()
    try:
        observers.start()
        kinds = ("pod", "claim", "binding") + (("pool",) if plan.pools else ())
        wait_for(
            lambda: all(checker.stats[f"{k} relists"] for k in kinds),
            60,
            message="the checker's watches to list once",
        )
        operator.start()
        operator.wait_healthy()
        report.timings["setup"] = clock() - began

        began = clock()
        items = [b.manifest() for b in plan.bindings]
        plane.kubectl(
            "apply",
            "-f",
            "-",
            input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        log(f"applied {len(items)} bindings at once; {len(report.faults)} faults follow")
        injector.run(clock(), clock() + report.seconds)
        report.timings["chaos"] = clock() - began
        log("faults over; waiting for the fleet to settle")

        began = clock()
        injector.wait_operator()
        left_open = checker.open_blind_windows()
        if left_open:
            raise AssertionError(f"the harness left blind windows open: {left_open}")
        report.settle_problems = _settle(plan, admin, injector)
        report.timings["settle"] = clock() - began
        log("settled" if not report.settle_problems else "did not settle")

        began = clock()
        report.cleanup_problems = _delete_all(plane, plan, admin, injector)
        report.timings["delete"] = clock() - began
        log("deleted every binding")
    finally:
        observers.stop()
        operator.stop()
        reader.close()
        report.injected = injector.injected
        report.no_ops = injector.no_ops
        report.incidents = injector.incidents
        report.revived = injector.revived
        report.violations = checker.violations
        report.stats = checker.stats + observers.stats
        report.pools = [
            f"PhonePool {p.name}: maxRunning {p.max_running}; largest count seen: "
            f"holders {checker.largest_ledger[p.name]}, phones on {checker.largest_billed[p.name]}"
            for p in plan.pools
        ]
        report.geelark = _geelark_counts(admin)
        admin.close()


def _geelark_counts(admin: SimulatorAdmin) -> str:
    counters = admin.counters()
    return (
        f"{counters.total} Open API calls; replies by code {dict(sorted(counters.codes.items()))}; "
        f"HTTP errors {dict(sorted(counters.http_statuses.items()))}; "
        f"connections dropped {counters.dropped}"
    )


def _items(plane: ControlPlane, *args: str) -> list[Obj]:
    found: list[Obj] = json.loads(plane.kubectl("get", *args, "-o", "json").stdout)["items"]
    return found


def _pools(plane: ControlPlane, plan: FleetPlan) -> list[Obj]:
    names = {p.name for p in plan.pools}
    return [p for p in _items(plane, "phonepools") if p["metadata"]["name"] in names]


def _snapshot(plane: ControlPlane, plan: FleetPlan) -> tuple[list[Obj], list[Obj], list[Obj]]:
    def items(*args: str) -> list[Obj]:
        return _items(plane, *args)

    bindings, pods = [], []
    for namespace in plan.namespaces:
        bindings += items("phonebindings", "-n", namespace)
        pods += items("pods", "-n", namespace)
    claims = [
        c
        for c in items("phoneclaims")
        if (c.get("spec") or {}).get("holder", {}).get("namespace") in plan.namespaces
    ]
    return bindings, claims, pods


def _settle(plan: FleetPlan, admin: SimulatorAdmin, injector: FaultInjector) -> list[str]:
    plane = injector.plane
    problems: list[str] = []

    def settled() -> bool:
        injector.supervise()
        bindings, claims, pods = _snapshot(plane, plan)
        phones = {p.id: (p.status, p.start_count) for p in admin.phones()}
        if plan.pools:
            pools = _pools(plane, plan)
            problems[:] = pooled_settle_problems(plan, bindings, claims, pods, phones, pools)
        else:
            problems[:] = settle_problems(plan, bindings, claims, pods, phones)
        return not problems

    try:
        wait_for(settled, 180, interval=1.0, message="the fleet to settle")
    except WaitTimeout:
        return problems
    return []


def _delete_all(
    plane: ControlPlane, plan: FleetPlan, admin: SimulatorAdmin, injector: FaultInjector
) -> list[str]:
    for namespace in plan.namespaces:
        plane.kubectl("delete", "phonebindings", "--all", "-n", namespace, "--wait=false")
    problems: list[str] = []

    def gone() -> bool:
        injector.supervise()
        bindings, _, _ = _snapshot(plane, plan)
        problems[:] = [
            f"binding {b['metadata']['namespace']}/{b['metadata']['name']} was never released"
            for b in bindings
        ]
        return not bindings

    try:
        wait_for(gone, 120, interval=1.0, message="every binding to be released")
    except WaitTimeout:
        return problems
    _, claims, pods = _snapshot(plane, plan)
    running = admin.running_phone_ids()
    if running:
        problems.append(f"phones still running (and billed): {sorted(running)}")
    if claims:
        problems.append(f"claims left: {sorted(c['metadata']['name'] for c in claims)}")
    if pods:
        problems.append(f"pods left: {sorted(p['metadata']['name'] for p in pods)}")
    for pool in _pools(plane, plan):
        holders = (pool.get("status") or {}).get("holders") or []
        if holders:
            problems.append(
                f"PhonePool {pool['metadata']['name']} still counts "
                f"{[h.get('name') for h in holders]}"
            )
    for namespace in plan.namespaces:
        secrets = json.loads(
            plane.kubectl(
                "get",
                "secrets",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/managed-by=phonefleet",
                "-o",
                "json",
            ).stdout
        )["items"]
        if secrets:
            problems.append(
                f"Secrets left in {namespace}: {[s['metadata']['name'] for s in secrets]}"
            )
    return problems
