"""The chaos run's fleet: 30 bindings over 20 phones, drawn from the seed, and what "settled" means.

Phones 1-18 are bound: 1-17 by one binding each, 18 by a binding suspended from the start, and 10
more bindings duplicate or alias phones 1-18 (by id where the first used the serialName, or by the
same reference). Two bindings name phones that do not exist (one by serialName, one by id). Phones
19 and 20 are never named: they must never be started. The bindings live in two namespaces, so the
claims (cluster-scoped) arbitrate across namespaces too.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from phonefleet_testbed.geelark_sim import seed_id, seed_name

__all__ = [
    "FleetPlan",
    "PlannedBinding",
    "PlannedPool",
    "World",
    "plan_fleet",
    "pod_ready",
    "settle_problems",
]

#: status.conflictWith of a waiter whose phone is held in another namespace (tenancy).
ANOTHER_NAMESPACE = "a binding in another namespace"

Obj = Mapping[str, Any]

PHONES = 20
BOUND_PHONES = 18
SUSPENDED_PHONE = 18
EXTRA_BINDINGS = 10
MISSING_REFERENCES = ("phone-404", "699999999999999404")


@dataclass(frozen=True)
class PlannedBinding:
    """One binding of the plan; ``phone`` is the simulator's phone number, None if it has none."""

    namespace: str
    name: str
    reference: str
    phone: int | None
    suspend: bool = False
    forbidden: bool = False
    """The PhonePools refuse it (pooled runs): it must end ``Forbidden`` and never hold."""

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def phone_id(self) -> str | None:
        """The canonical Geelark id this binding resolves to."""
        return seed_id(self.phone) if self.phone is not None else None

    def manifest(self, *, suspend: bool | None = None) -> dict[str, Any]:
        """The PhoneBinding as applied (``suspend`` overrides the plan's)."""
        spec: dict[str, Any] = {"phoneId": self.reference, "releasePolicy": "Stop"}
        if self.suspend if suspend is None else suspend:
            spec["suspend"] = True
        return {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        }


@dataclass(frozen=True)
class PlannedPool:
    """A PhonePool of a pooled run: the phones given its simulator group or tag, and who may
    bind them (``selector``: the namespaces are chosen by their client label, else by name)."""

    name: str
    max_running: int
    phones: tuple[int, ...]
    namespaces: tuple[str, ...]
    group: str | None = None
    tag: str | None = None
    selector: bool = False

    @property
    def phone_ids(self) -> frozenset[str]:
        """The Geelark ids of its phones."""
        return frozenset(seed_id(n) for n in self.phones)

    def manifest(self, client_label: str) -> dict[str, Any]:
        """The PhonePool as applied."""
        phones = {"groups": [self.group]} if self.group else {"tags": [self.tag]}
        namespaces: dict[str, Any] = (
            {"selector": {"matchLabels": {client_label: self.name}}}
            if self.selector
            else {"names": list(self.namespaces)}
        )
        return {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhonePool",
            "metadata": {"name": self.name},
            "spec": {"phones": phones, "namespaces": namespaces, "maxRunning": self.max_running},
        }


@dataclass(frozen=True)
class FleetPlan:
    """Every binding of the run, in the order they are applied (and its pools, if any)."""

    namespaces: tuple[str, ...]
    bindings: tuple[PlannedBinding, ...]
    pools: tuple[PlannedPool, ...] = ()

    def by_key(self, key: str) -> PlannedBinding:
        """The planned binding ``namespace/name``."""
        return next(b for b in self.bindings if b.key == key)

    def phones(self) -> list[int]:
        """Numbers of the phones some binding may hold."""
        return sorted({b.phone for b in self.bindings if b.phone is not None and not b.forbidden})

    def describe(self) -> str:
        """One line per binding: who names which phone how (and one per pool)."""
        lines = [
            f"  {b.key:<32} phoneId={b.reference:<20} "
            f"phone={b.phone if b.phone is not None else '-'}"
            + (" suspend" if b.suspend else "")
            + (" forbidden" if b.forbidden else "")
            for b in self.bindings
        ]
        lines += [
            f"  pool {p.name}: phones {p.phones[0]}-{p.phones[-1]}, maxRunning {p.max_running}, "
            f"namespaces {', '.join(p.namespaces)}"
            for p in self.pools
        ]
        return "\n".join(lines)


def _reference(rng: random.Random, phone: int) -> str:
    return seed_id(phone) if rng.random() < 0.5 else seed_name(phone)


def plan_fleet(rng: random.Random, namespaces: tuple[str, str]) -> FleetPlan:
    """Draw the 30 bindings of a run from ``rng``."""
    bindings: list[PlannedBinding] = []
    for phone in range(1, BOUND_PHONES + 1):
        bindings.append(
            PlannedBinding(
                namespace=rng.choice(namespaces),
                name=f"p{phone:02d}",
                reference=_reference(rng, phone),
                phone=phone,
                suspend=phone == SUSPENDED_PHONE,
            )
        )
    for extra in range(1, EXTRA_BINDINGS + 1):
        phone = rng.randint(1, BOUND_PHONES)
        first = bindings[phone - 1].reference
        # An alias names the phone the other way; a duplicate repeats the same reference.
        reference = _reference(rng, phone) if rng.random() < 0.6 else first
        kind = "dup" if reference == first else "alias"
        bindings.append(
            PlannedBinding(
                namespace=rng.choice(namespaces),
                name=f"{kind}{extra:02d}-p{phone:02d}",
                reference=reference,
                phone=phone,
            )
        )
    for index, reference in enumerate(MISSING_REFERENCES, start=1):
        bindings.append(
            PlannedBinding(
                namespace=rng.choice(namespaces),
                name=f"ghost{index}",
                reference=reference,
                phone=None,
            )
        )
    return FleetPlan(namespaces=tuple(namespaces), bindings=tuple(bindings))


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True)
class World:
    """One snapshot of what settling is judged on."""

    bindings: dict[tuple[str, str], Obj]
    claims: dict[str, Obj]
    live_pods: dict[tuple[str, str], Obj]
    phones: Mapping[str, tuple[int, int]]

    def body(self, planned: PlannedBinding) -> Obj | None:
        return self.bindings.get((planned.namespace, planned.name))

    def status(self, planned: PlannedBinding) -> Obj:
        return (self.body(planned) or {}).get("status") or {}

    def why(self, planned: PlannedBinding) -> str:
        """The binding's Ready condition, to say what it waits for."""
        conditions = self.status(planned).get("conditions") or []
        ready: Obj = next((c for c in conditions if c.get("type") == "Ready"), {})
        return f"({ready.get('reason')}: {ready.get('message')})"

    def uid(self, planned: PlannedBinding) -> str | None:
        uid: str | None = (self.body(planned) or {}).get("metadata", {}).get("uid")
        return uid

    @classmethod
    def of(
        cls,
        bindings: Iterable[Obj],
        claims: Iterable[Obj],
        pods: Iterable[Obj],
        phones: Mapping[str, tuple[int, int]],
    ) -> World:
        """The snapshot of these listings (pods being deleted are left out)."""
        return cls(
            bindings={(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in bindings},
            claims={c["metadata"]["name"]: c for c in claims},
            live_pods={
                (p["metadata"]["namespace"], p["metadata"]["name"]): p
                for p in pods
                if not p["metadata"].get("deletionTimestamp")
            },
            phones=phones,
        )


def settle_problems(
    plan: FleetPlan,
    bindings: Iterable[Obj],
    claims: Iterable[Obj],
    pods: Iterable[Obj],
    phones: Mapping[str, tuple[int, int]],
) -> list[str]:
    """What keeps the fleet from its expected end state; empty once it is there.

    Per bound phone: exactly one of its bindings holds the claim; the holder is ``Running`` with
    one live, ready pod and the phone running, or ``Suspended`` (its spec says so) with no pod and
    the phone stopped; every other binding of the phone is ``Conflict`` naming the holder (or only
    "a binding in another namespace") and has no pod. Bindings of missing phones are
    ``PhoneNotFound``. Phones nobody names were never started. Every status is from the latest
    generation. ``phones`` maps ids to (status, starts).
    """
    world = World.of(bindings, claims, pods, phones)
    problems: list[str] = []
    for planned in plan.bindings:
        body = world.body(planned)
        if body is None:
            problems.append(f"{planned.key} does not exist")
        elif world.status(planned).get("observedGeneration") != body["metadata"].get("generation"):
            problems.append(f"{planned.key} has not reconciled its latest generation")
        elif planned.phone is None and world.status(planned).get("phase") != "PhoneNotFound":
            problems.append(
                f"{planned.key} is {world.status(planned).get('phase')}, not PhoneNotFound"
            )
    expected_pods: set[tuple[str, str]] = set()
    for phone in plan.phones():
        problems += _phone_problems(plan, phone, world, expected_pods)
    problems += untouched_problems(
        phones, set(plan.phones()), "named by no binding", world, expected_pods
    )
    return problems


def untouched_problems(
    phones: Mapping[str, tuple[int | None, int]],
    used: set[int],
    unused_as: str,
    world: World,
    expected_pods: set[tuple[str, str]],
) -> list[str]:
    """What is wrong outside the phones in use: a phone not in ``used`` (described as
    ``unused_as``) that was started or is not stopped, a pod that no holder should have."""
    problems: list[str] = []
    for number in range(1, PHONES + 1):
        power, starts = phones.get(seed_id(number), (None, 0))
        if number not in used and (power != 2 or starts):
            problems.append(f"phone {seed_id(number)}, {unused_as}, was started")
    stray = sorted(f"{ns}/{name}" for ns, name in set(world.live_pods) - expected_pods)
    if stray:
        problems.append(f"pods that no holder should have: {stray}")
    return problems


def _phone_problems(
    plan: FleetPlan, phone: int, world: World, expected_pods: set[tuple[str, str]]
) -> list[str]:
    phone_id = seed_id(phone)
    mine = [b for b in plan.bindings if b.phone == phone]
    claim = world.claims.get(phone_id) or {}
    holder_uid = (claim.get("spec") or {}).get("holder", {}).get("uid")
    holder = next((b for b in mine if holder_uid and world.uid(b) == holder_uid), None)
    if holder is None:
        return [f"phone {phone_id}: none of its bindings holds its claim (holder {holder_uid})"]
    problems = []
    phase = world.status(holder).get("phase")
    power = world.phones.get(phone_id, (None, 0))[0]
    if holder.suspend and (phase, power) != ("Suspended", 2):
        problems.append(
            f"{holder.key} holds {phone_id}: {phase}, phone status {power} {world.why(holder)}"
        )
    if not holder.suspend:
        pod_key = (holder.namespace, f"{holder.name}-worker")
        expected_pods.add(pod_key)
        if (phase, power) != ("Running", 0):
            problems.append(
                f"{holder.key} holds {phone_id}: {phase}, phone status {power} {world.why(holder)}"
            )
        pod = world.live_pods.get(pod_key)
        if pod is None or not pod_ready(pod):
            state = "none" if pod is None else (pod.get("status") or {}).get("phase")
            problems.append(f"{holder.key} has no live ready pod (pod: {state})")
    for other in mine:
        found = world.status(other)
        # A holder in another namespace is not named to the waiter (docs/tenancy.md).
        shown = holder.key if other.namespace == holder.namespace else ANOTHER_NAMESPACE
        if other is not holder and (found.get("phase"), found.get("conflictWith")) != (
            "Conflict",
            shown,
        ):
            problems.append(
                f"{other.key} is {found.get('phase')} (conflictWith "
                f"{found.get('conflictWith')}), not Conflict with {shown}"
            )
    return problems
