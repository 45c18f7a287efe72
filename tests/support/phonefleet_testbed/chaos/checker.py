"""The chaos test's judge: six invariants over what it observes itself, never the operator's views.

It is fed by its own watches of worker pods, PhoneClaims and PhoneBindings (``observers``), by its
own polls of the Geelark simulator's admin API, and by the fault injector, which tells it when it
blinded the operator (see *blind windows*). Every call carries the time ``at`` (a monotonic clock
in seconds) at which the observation was made, so a test can feed it a sequence by hand.

Words used below:

* A pod is **live** while it exists and has no ``deletionTimestamp``. A deletion cannot be undone,
  so a pod seen live at two moments (same uid) was live for the whole time between them.
* A pod **belongs to** the binding whose uid is its controller ``ownerReference``; a binding
  **holds** a phone when the PhoneClaim named after the phone names the binding's uid. A claim is
  never updated, so a claim seen with the same uid at two moments held the same holder throughout.
* A phone is **off** when the simulator reports status 2 (stopped). An **Open API stop** is a stop
  the simulator counted (``stopCount``): one asked through the Open API, which only the operator
  uses. Stops the fault injector makes behind the operator's back are not counted.

The invariants, and why each has or has no grace:

I1 **one live pod per phone.** No two live pods carry the same phone id at any point of the pod
   watch's history. No grace: one watch delivers the pods' changes in the API server's order, and
   a relist is one consistent snapshot, so every state checked is a state the API server held.
   Not even after a claim deleted by hand: a system can fence there (the next holder waits until
   no live pod carries the phone), so an overlap is a finding, not something to allow.

I2 **a live pod's binding holds its phone.** Proven by three fresh reads: the pod is live, then the
   claim does not name the pod's binding, then the same pod is still live; the claim's answer is
   then a moment at which the pod lived without its binding holding the phone. The one grace: a
   person deleted the claim by hand (``force_released``). The holder learns of that through a watch
   event and removes its pod afterwards, so for ``release_grace`` seconds after the deletion (or
   after the operator came back, if it was down or the API server restarting then) the pod may
   still live. The operator never deletes a claim before its holder's pod is gone, so no other
   event opens such a gap.

I3 **no Open API stop under the holder's live pod.** When a phone's ``stopCount`` rises between two
   polls (at ``t0`` then ``t1``), a pod that was live before ``t0`` and belongs to the holder of a
   claim that existed before ``t0`` must not be live with the same claim still in place when read
   after ``t1``: if it is, the stop hit a phone whose holder's worker was live. No grace: the
   operator removes a pod (``deletionTimestamp``) before it stops that pod's phone, on every path
   (deletion, suspension, rebinding), so there is no legitimate moment for it. It is stricter than
   "Ready": a starting worker loses its phone just the same.

I4 **a Running binding's phone is on.** A binding that is not being deleted may report ``Running``
   while the simulator reports its phone off for at most ``running_off_grace`` seconds. The grace is
   needed: a stop behind the operator's back is seen only at the binding's next periodic check
   (at most 1.5 x ``PHONEFLEET_RUNNING_RECHECK_SECONDS`` later, on its shared grid) plus the time to
   ask Geelark and write the status. The clock starts at the latest of: the phone seen off, the
   binding seen Running, the end of the last blind window; it does not run during one. A blind
   window is a fault that keeps the operator from learning or from writing (Geelark failing, the
   operator down, the API server restarting): the operator then keeps the phase on purpose
   ("could not check" is not "stopped"). A binding being deleted is exempt: its status is no
   longer maintained, and it is gone once its finalizer is done.

I5 **a holder is never told it lost its phone.** A binding's status must not turn from a phase
   only a holder reports (``Bound``, ``Running``, ``Suspended``) to ``Conflict`` while the claim
   naming it stays in place. Proven by one fresh read after the checker saw the ``Conflict``
   status: the claim names the binding, and its ``resourceVersion`` is older than the binding's
   previous status. A claim with a deletionTimestamp (deleted by hand, kept by its finalizer
   ``phonefleet.dev/worker-gone`` until the holder's pod is gone) holds nothing: its holder is
   right to say Conflict. Claims are otherwise never updated before they go (the finalizer is
   removed only from a deleted claim, or right before the holder deletes it), so that
   resourceVersion is the claim's creation, and the test bed's single etcd numbers the revisions
   of every kind from one counter (Kubernetes calls resourceVersions opaque; here they are etcd
   revisions). The claim then existed, naming
   the binding, through the whole pass that wrote ``Conflict``: a pass that read it could not have
   said so. No grace. (Issue 10's first defect breaks this one.)

I6 **a deleted holder stops its phone.** A binding that held its phone's claim when its deletion
   began (the checker saw its ``deletionTimestamp``) must not disappear (its finalizer done) before
   the phone was stopped: the simulator's stop counter for the phone must have risen between the
   poll before the deletion was seen and the first poll after the binding was gone, unless a poll
   in between saw the phone off anyway, or a person deleted that claim by hand at any time since
   it appeared (then the binding may no longer hold the phone, and stopping it is not its job).
   Every binding of the run has ``releasePolicy: Stop``. No grace: the finalizer's contract is to
   stop first.

With PhonePools (the pooled run), two more, each against the pools' ``maxRunning``:

I7 **a pool's ledger never exceeds its limit.** Every version of a PhonePool that the checker's
   own watch of PhonePools delivers has at most ``spec.maxRunning`` entries in ``status.holders``,
   each binding uid at most once. This is the count the operator admits by (a conditional write
   the API server decides, docs/tenancy.md); a watch delivers every version in the API server's
   order (a relist is one snapshot), so no state of the ledger between two looks is missed. No
   grace: the run never lowers a limit, so nothing is ever legitimately counted above it.

I8 **a pool's billed phones never exceed its limit.** Replaying the simulator's power journal
   (every phone going on or off, numbered in the simulator's own order: ``/_sim/power-log``) from
   its first entry, at no step are more than ``maxRunning`` phones of the pool on (starting or
   running: what Geelark bills). Which phones belong to which pool comes from the run's plan (the
   simulator groups and tags it gave them), not from the operator. This is the overrun a client
   pays for, observed at every change, not by samples. No grace: the operator takes a slot before
   it starts a phone, and frees a slot only after the phone is stopped (a suspended binding once
   it reports ``Suspended``, a deleted one once it is gone, a binding in ``Conflict`` started
   nothing). Why not count claims: a suspended binding keeps its claim (its phone stays reserved,
   stopped) and by design no longer counts, so a pool's claims may legitimately outnumber its
   limit; the claims' holders are checked against the ledger once the run settles instead.

The checker fails only on what it can show; it counts everything it looked at (``stats``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = [
    "Checker",
    "ClusterReader",
    "Grace",
    "PhoneReading",
    "PoolLimit",
    "PowerEntry",
    "Violation",
]

Obj = Mapping[str, Any]

PHONE_LABEL = "phonefleet.dev/phone-id"
STOPPED = 2
# Phases only a binding holding its claim reports.
_HOLDING_PHASES = frozenset({"Bound", "Running", "Suspended"})


class ClusterReader(Protocol):
    """Fresh reads from the API server, to prove what the watches suggest."""

    def pod(self, namespace: str, name: str) -> Obj | None:
        """The pod now, or None when it does not exist."""

    def claim(self, phone_id: str) -> Obj | None:
        """The PhoneClaim of the phone now, or None."""


@dataclass(frozen=True)
class Grace:
    """The two bounded windows the invariants allow (see the module docstring)."""

    release_grace: float = 20.0
    """I2: how long a pod may outlive a claim deleted by hand."""
    running_off_grace: float = 25.0
    """I4: how long a binding may report Running while its phone is off, outside blind windows."""


@dataclass(frozen=True)
class PhoneReading:
    """One phone as one poll of the simulator's admin API showed it."""

    id: str
    status: int
    stop_count: int


@dataclass(frozen=True)
class PoolLimit:
    """A pool of the run as planned: its name, ``maxRunning`` and the ids of its phones."""

    name: str
    max_running: int
    phone_ids: frozenset[str]


class PowerEntry(Protocol):
    """One entry of the simulator's power journal (``geelark_sim.PowerChange``)."""

    @property
    def seq(self) -> int: ...
    @property
    def id(self) -> str: ...
    @property
    def on(self) -> bool: ...


@dataclass(frozen=True)
class Violation:
    """One invariant found broken."""

    at: float
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant} at {self.at:.1f}s] {self.detail}"


@dataclass(frozen=True)
class _Pod:
    namespace: str
    name: str
    uid: str
    phone_id: str
    owner_uid: str
    live: bool
    first_seen: float

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class _Claim:
    phone_id: str
    uid: str
    holder_uid: str
    holder: str
    first_seen: float


@dataclass
class _Binding:
    key: str
    uid: str
    phase: str | None
    phone_id: str | None
    deleting: bool
    running_since: float | None
    revision: int


@dataclass(frozen=True)
class _ConflictSuspect:
    """A binding that turned Conflict from Bound/Running (I5, to be proven)."""

    binding: _Binding
    previous_phase: str
    previous_revision: int


@dataclass
class _Deletion:
    """A holder whose deletion began (I6): what its phone did until it was gone."""

    binding: str
    phone_id: str
    began: float
    stops_before: int
    claimed_since: float
    """When the checker first saw the claim that named the binding at the deletion's start."""
    seen_off: bool = False
    gone_at: float | None = None


@dataclass
class _Phone:
    status: int
    stop_count: int
    off_since: float | None
    polled_at: float


@dataclass(frozen=True)
class _Suspect:
    """A live pod the views show without its binding holding the phone (I2, to be proven)."""

    pod: _Pod
    seen_at: float


@dataclass(frozen=True)
class _StopSuspect:
    """An Open API stop of a phone while the views showed its holder's pod live (I3)."""

    pod: _Pod
    claim: _Claim
    before: float
    after: float


@dataclass
class _Blind:
    open: dict[int, str] = field(default_factory=dict)
    last_end: float = float("-inf")
    next_token: int = 0


def _pod(obj: Obj, first_seen: float) -> _Pod | None:
    meta = obj.get("metadata") or {}
    phone = (meta.get("labels") or {}).get(PHONE_LABEL)
    if not phone:
        return None
    owner = next(
        (ref.get("uid", "") for ref in meta.get("ownerReferences") or [] if ref.get("controller")),
        "",
    )
    return _Pod(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        phone_id=phone,
        owner_uid=owner,
        live=not meta.get("deletionTimestamp"),
        first_seen=first_seen,
    )


def _claim(obj: Obj, first_seen: float) -> _Claim:
    holder = (obj.get("spec") or {}).get("holder") or {}
    return _Claim(
        phone_id=obj["metadata"]["name"],
        uid=obj["metadata"].get("uid", ""),
        holder_uid=holder.get("uid", ""),
        holder=f"{holder.get('namespace', '')}/{holder.get('name', '')}",
        first_seen=first_seen,
    )


def _is_live(obj: Obj | None, uid: str) -> bool:
    if obj is None:
        return False
    meta = obj.get("metadata") or {}
    return bool(meta.get("uid") == uid and not meta.get("deletionTimestamp"))


def _holder_uid(claim: Obj | None) -> str | None:
    if claim is None:
        return None
    uid: str | None = ((claim.get("spec") or {}).get("holder") or {}).get("uid")
    return uid


class Checker:
    """Keeps its own view of pods, claims, bindings and phones, and judges every change."""

    def __init__(
        self,
        reader: ClusterReader,
        grace: Grace | None = None,
        pools: Iterable[PoolLimit] = (),
    ) -> None:
        self._reader = reader
        self.grace = grace or Grace()
        self._pools = {pool.name: pool for pool in pools}
        self._power_seq = 0
        self._on: set[str] = set()
        self._over: set[str] = set()
        """Pools above their limit in the journal's replay (I8 is reported once per overrun)."""
        self.largest_billed: dict[str, int] = dict.fromkeys(self._pools, 0)
        self.largest_ledger: dict[str, int] = dict.fromkeys(self._pools, 0)
        self._lock = threading.Lock()
        self._pods: dict[str, _Pod] = {}
        self._claims: dict[str, _Claim] = {}
        self._bindings: dict[str, _Binding] = {}
        self._phones: dict[str, _Phone] = {}
        self._suspects: dict[str, _Suspect] = {}
        self._stop_suspects: list[_StopSuspect] = []
        self._conflict_suspects: list[_ConflictSuspect] = []
        self._deletions: dict[str, _Deletion] = {}
        self._force_released: dict[str, float] = {}
        self._k8s_back_at = float("-inf")
        self._blind = _Blind()
        self._i4_reported: set[tuple[str, float]] = set()
        self._violations: list[Violation] = []
        self._reported: set[object] = set()
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------ results

    @property
    def violations(self) -> list[Violation]:
        """Every violation found so far, in the order found."""
        with self._lock:
            return list(self._violations)

    def _violate(self, at: float, invariant: str, detail: str) -> None:
        self._violations.append(Violation(at, invariant, detail))
        self.stats[f"violations {invariant}"] += 1

    # ------------------------------------------------------------------ pods

    def pods_listed(self, items: Iterable[Obj], at: float) -> None:
        """A relist of the worker pods: the view is replaced by this snapshot."""
        with self._lock:
            self.stats["pod relists"] += 1
            previous = self._pods
            self._pods = {}
            for obj in items:
                pod = self._seen_pod(obj, previous, at)
                if pod is not None:
                    self._pods[pod.key] = pod
            for phone in {p.phone_id for p in self._pods.values()}:
                self._check_phone_pods(phone, at)

    def pod_event(self, kind: str, obj: Obj, at: float) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) of a worker pod."""
        with self._lock:
            self.stats["pod events"] += 1
            pod = self._seen_pod(obj, self._pods, at)
            if pod is None:
                return
            if kind == "DELETED":
                self._pods.pop(pod.key, None)
                return
            self._pods[pod.key] = pod
            self._check_phone_pods(pod.phone_id, at)

    @staticmethod
    def _seen_pod(obj: Obj, known: Mapping[str, _Pod], at: float) -> _Pod | None:
        pod = _pod(obj, at)
        if pod is None:
            return None
        before = known.get(pod.key)
        if before is not None and before.uid == pod.uid:
            return replace(pod, first_seen=before.first_seen)
        return pod

    def _check_phone_pods(self, phone_id: str, at: float) -> None:
        live = [p for p in self._pods.values() if p.phone_id == phone_id and p.live]
        self.stats["checks I1"] += 1
        pair = frozenset(p.uid for p in live)
        if len(live) > 1 and pair not in self._reported:
            self._reported.add(pair)  # once per set of pods, not once per event showing it
            names = ", ".join(sorted(p.key for p in live))
            self._violate(at, "I1", f"phone {phone_id} has {len(live)} live pods: {names}")
        claim = self._claims.get(phone_id)
        for pod in live:
            self.stats["checks I2"] += 1
            if claim is None or claim.holder_uid != pod.owner_uid:
                self._suspects.setdefault(pod.uid, _Suspect(pod, at))

    # ------------------------------------------------------------------ claims

    def claims_listed(self, items: Iterable[Obj], at: float) -> None:
        """A relist of the PhoneClaims."""
        with self._lock:
            self.stats["claim relists"] += 1
            previous = self._claims
            self._claims = {}
            for obj in items:
                claim = self._seen_claim(obj, previous, at)
                self._claims[claim.phone_id] = claim
            for phone in {p.phone_id for p in self._pods.values()}:
                self._check_phone_pods(phone, at)

    def claim_event(self, kind: str, obj: Obj, at: float) -> None:
        """One watch event of a PhoneClaim."""
        with self._lock:
            self.stats["claim events"] += 1
            claim = self._seen_claim(obj, self._claims, at)
            if kind == "DELETED":
                if self._claims.get(claim.phone_id, claim).uid == claim.uid:
                    self._claims.pop(claim.phone_id, None)
            else:
                self._claims[claim.phone_id] = claim
            self._check_phone_pods(claim.phone_id, at)

    @staticmethod
    def _seen_claim(obj: Obj, known: Mapping[str, _Claim], at: float) -> _Claim:
        claim = _claim(obj, at)
        before = known.get(claim.phone_id)
        if before is not None and before.uid == claim.uid:
            return before
        return claim

    # ------------------------------------------------------------------ bindings

    def bindings_listed(self, items: Iterable[Obj], at: float) -> None:
        """A relist of the PhoneBindings."""
        with self._lock:
            self.stats["binding relists"] += 1
            previous = self._bindings
            self._bindings = {}
            for obj in items:
                binding = self._seen_binding(obj, previous, at)
                self._bindings[binding.uid] = binding
                self._check_conflict(previous.get(binding.uid), binding)
                self._check_deletion(binding, at)
            for uid in set(previous) - set(self._bindings):
                self._gone(uid, at)

    def binding_event(self, kind: str, obj: Obj, at: float) -> None:
        """One watch event of a PhoneBinding."""
        with self._lock:
            self.stats["binding events"] += 1
            binding = self._seen_binding(obj, self._bindings, at)
            before = self._bindings.get(binding.uid)
            if kind == "DELETED":
                self._bindings.pop(binding.uid, None)
                self._gone(binding.uid, at)
                return
            self._bindings[binding.uid] = binding
            self._check_conflict(before, binding)
            self._check_deletion(binding, at)

    def _check_deletion(self, binding: _Binding, at: float) -> None:
        if not binding.deleting or binding.uid in self._deletions or binding.phone_id is None:
            return
        claim = self._claims.get(binding.phone_id)
        phone = self._phones.get(binding.phone_id)
        if claim is None or claim.holder_uid != binding.uid or phone is None:
            return
        self._deletions[binding.uid] = _Deletion(
            binding.key,
            binding.phone_id,
            at,
            phone.stop_count,
            claim.first_seen,
            seen_off=phone.off_since is not None,
        )

    def _gone(self, uid: str, at: float) -> None:
        deletion = self._deletions.get(uid)
        if deletion is not None and deletion.gone_at is None:
            deletion.gone_at = at

    def _check_conflict(self, before: _Binding | None, binding: _Binding) -> None:
        self.stats["checks I5"] += 1
        if (
            before is not None
            and before.phase in _HOLDING_PHASES
            and binding.phase == "Conflict"
            and binding.phone_id is not None
        ):
            self._conflict_suspects.append(_ConflictSuspect(binding, before.phase, before.revision))

    @staticmethod
    def _seen_binding(obj: Obj, known: Mapping[str, _Binding], at: float) -> _Binding:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        phase = status.get("phase")
        before = known.get(meta["uid"])
        running_since = None
        if phase == "Running":
            running_since = (
                before.running_since if before and before.phase == "Running" else None
            ) or at
        return _Binding(
            key=f"{meta['namespace']}/{meta['name']}",
            uid=meta["uid"],
            phase=phase,
            phone_id=(status.get("phone") or {}).get("id"),
            deleting=bool(meta.get("deletionTimestamp")),
            running_since=running_since,
            revision=int(meta.get("resourceVersion") or 0),
        )

    # ------------------------------------------------------------------ phones

    def phones_polled(self, phones: Iterable[PhoneReading], at: float) -> None:
        """One poll of every phone in the simulator."""
        with self._lock:
            self.stats["phone polls"] += 1
            for reading in phones:
                before = self._phones.get(reading.id)
                off = reading.status == STOPPED
                off_since = None
                if off:
                    was_off = before is not None and before.off_since is not None
                    off_since = before.off_since if was_off and before else at
                if before is not None and reading.stop_count > before.stop_count:
                    self.stats["Open API stops seen"] += reading.stop_count - before.stop_count
                    self._suspect_stop(reading.id, before.polled_at, at)
                self._phones[reading.id] = _Phone(reading.status, reading.stop_count, off_since, at)
            self._check_deletions(at)

    def _check_deletions(self, at: float) -> None:
        for uid, deletion in list(self._deletions.items()):
            phone = self._phones[deletion.phone_id]
            deletion.seen_off = deletion.seen_off or phone.off_since is not None
            if deletion.gone_at is None or deletion.gone_at >= phone.polled_at:
                continue  # judged on the first poll after the binding was gone
            del self._deletions[uid]
            self.stats["checks I6"] += 1
            released = self._force_released.get(deletion.phone_id, float("-inf"))
            stopped = phone.stop_count > deletion.stops_before
            # A claim deleted by hand since it appeared: the binding may no longer hold the phone
            # (the claims watch may not have shown the deletion yet when the binding's did).
            if stopped or deletion.seen_off or released >= deletion.claimed_since:
                continue
            self._violate(
                at,
                "I6",
                f"binding {deletion.binding} held phone {deletion.phone_id} when its deletion "
                f"began ({deletion.began:.1f}s) and was gone at {deletion.gone_at:.1f}s, but the "
                "phone was never stopped: it still runs, billed",
            )

    def _suspect_stop(self, phone_id: str, before: float, after: float) -> None:
        claim = self._claims.get(phone_id)
        self.stats["checks I3"] += 1
        if claim is None or claim.first_seen >= before:
            return
        for pod in self._pods.values():
            if (
                pod.phone_id == phone_id
                and pod.live
                and pod.owner_uid == claim.holder_uid
                and pod.first_seen < before
            ):
                self._stop_suspects.append(_StopSuspect(pod, claim, before, after))

    # ------------------------------------------------------------------ pools

    def pools_listed(self, items: Iterable[Obj], at: float) -> None:
        """A relist of the PhonePools: each is one version to judge (I7)."""
        with self._lock:
            self.stats["pool relists"] += 1
            for obj in items:
                self._check_ledger(obj, at)

    def pool_event(self, kind: str, obj: Obj, at: float) -> None:
        """One watch event of a PhonePool (I7)."""
        with self._lock:
            self.stats["pool events"] += 1
            if kind != "DELETED":
                self._check_ledger(obj, at)

    def _check_ledger(self, obj: Obj, at: float) -> None:
        name = obj["metadata"]["name"]
        if name not in self._pools:
            return
        self.stats["checks I7"] += 1
        holders = (obj.get("status") or {}).get("holders") or []
        limit = (obj.get("spec") or {}).get("maxRunning")
        uids = [h.get("uid") for h in holders]
        self.largest_ledger[name] = max(self.largest_ledger[name], len(holders))
        version = obj["metadata"].get("resourceVersion")
        if limit is not None and len(holders) > int(limit):
            keys = ", ".join(sorted(f"{h.get('namespace')}/{h.get('name')}" for h in holders))
            self._violate(
                at,
                "I7",
                f"PhonePool {name} (resourceVersion {version}) counts {len(holders)} holders "
                f"against maxRunning {limit}: {keys}",
            )
        if len(set(uids)) != len(uids):
            self._violate(
                at, "I7", f"PhonePool {name} (resourceVersion {version}) counts a binding twice"
            )

    @property
    def power_seq(self) -> int:
        """The last power change replayed (the next poll asks for the ones after it)."""
        with self._lock:
            return self._power_seq

    def power_changes(self, entries: Iterable[PowerEntry], at: float) -> None:
        """The simulator's power journal since the last call, in its order (I8)."""
        with self._lock:
            for entry in entries:
                if entry.seq <= self._power_seq:
                    continue  # already replayed (a poll may overlap the previous one)
                if entry.seq != self._power_seq + 1:
                    self._violate(
                        at,
                        "I8",
                        f"the simulator's power journal skipped entries {self._power_seq + 1}-"
                        f"{entry.seq - 1}: the pools' billed phones cannot be judged from here",
                    )
                self._power_seq = entry.seq
                self.stats["power changes replayed"] += 1
                if entry.on:
                    self._on.add(entry.id)
                else:
                    self._on.discard(entry.id)
                self._check_billed(entry, at)

    def _check_billed(self, entry: PowerEntry, at: float) -> None:
        for pool in self._pools.values():
            if entry.id not in pool.phone_ids:
                continue
            self.stats["checks I8"] += 1
            on = sorted(self._on & pool.phone_ids)
            self.largest_billed[pool.name] = max(self.largest_billed[pool.name], len(on))
            if len(on) <= pool.max_running:
                self._over.discard(pool.name)
            elif pool.name not in self._over:
                self._over.add(pool.name)  # once per overrun, not once per change during it
                self._violate(
                    at,
                    "I8",
                    f"PhonePool {pool.name} has {len(on)} phones on (billed) against maxRunning "
                    f"{pool.max_running} at power change {entry.seq} (phone {entry.id} "
                    f"{'on' if entry.on else 'off'}): {', '.join(on)}",
                )

    # ------------------------------------------------------------------ faults

    def force_released(self, phone_id: str, at: float) -> None:
        """The fault injector deleted the phone's claim by hand at ``at``."""
        with self._lock:
            self._force_released[phone_id] = at

    def blind_begin(self, reason: str, at: float, *, kubernetes: bool = False) -> int:
        """A fault that keeps the operator from learning or writing begins; returns its token.

        ``kubernetes``: the operator cannot see the API server's events (operator down, API server
        restarting), which also delays its reaction to a claim deleted by hand (I2's grace).
        """
        with self._lock:
            token = self._blind.next_token
            self._blind.next_token += 1
            self._blind.open[token] = ("k8s:" if kubernetes else "") + reason
            self.stats[f"blind windows ({reason})"] += 1
            return token

    def open_blind_windows(self) -> list[str]:
        """Blind windows begun and not ended (after the faults: none, or the harness is wrong)."""
        with self._lock:
            return sorted(self._blind.open.values())

    def blind_end(self, token: int, at: float) -> None:
        """The blind window ``token`` is over (the operator is back, Geelark answers again)."""
        with self._lock:
            reason = self._blind.open.pop(token, None)
            if reason is None:
                return
            self._blind.last_end = max(self._blind.last_end, at)
            if reason.startswith("k8s:"):
                self._k8s_back_at = max(self._k8s_back_at, at)

    # ------------------------------------------------------------------ judging

    def evaluate(self, at: float) -> None:
        """Prove or drop the suspects (fresh reads) and apply the time-bound invariant I4."""
        with self._lock:
            suspects = list(self._suspects.values())
            self._suspects.clear()
            stop_suspects, self._stop_suspects = self._stop_suspects, []
            conflicts, self._conflict_suspects = self._conflict_suspects, []
        for suspect in suspects:
            try:
                self._prove_unheld(suspect, at)
            except Exception:  # the API server may be restarting: prove it on the next round
                with self._lock:
                    self.stats["reads failed"] += 1
                    self._suspects.setdefault(suspect.pod.uid, suspect)
        for stop in stop_suspects:
            try:
                self._prove_stop(stop, at)
            except Exception:
                with self._lock:
                    self.stats["reads failed"] += 1
                    self._stop_suspects.append(stop)
        for conflict in conflicts:
            try:
                self._prove_conflict(conflict, at)
            except Exception:
                with self._lock:
                    self.stats["reads failed"] += 1
                    self._conflict_suspects.append(conflict)
        with self._lock:
            self._check_running_phones(at)

    def _prove_conflict(self, suspect: _ConflictSuspect, at: float) -> None:
        binding = suspect.binding
        assert binding.phone_id is not None
        self.stats["I5 suspects"] += 1
        claim = self._reader.claim(binding.phone_id)
        if claim is None or _holder_uid(claim) != binding.uid:
            return
        if claim["metadata"].get("deletionTimestamp"):
            return  # deleted by hand, kept by its finalizer until the holder's pod is gone
        created = int(claim["metadata"].get("resourceVersion") or 0)
        if created >= suspect.previous_revision:
            return
        with self._lock:
            self._violate(
                at,
                "I5",
                f"binding {binding.key} turned from {suspect.previous_phase} to Conflict while "
                f"the claim on phone {binding.phone_id} (resourceVersion {created}) named it "
                f"from before its {suspect.previous_phase} status (resourceVersion "
                f"{suspect.previous_revision}) until after",
            )

    def _prove_unheld(self, suspect: _Suspect, at: float) -> None:
        pod = suspect.pod
        self.stats["I2 suspects"] += 1
        if not _is_live(self._reader.pod(pod.namespace, pod.name), pod.uid):
            return
        claim = self._reader.claim(pod.phone_id)
        if _holder_uid(claim) == pod.owner_uid:
            return
        if not _is_live(self._reader.pod(pod.namespace, pod.name), pod.uid):
            return
        with self._lock:
            self.stats["I2 proven"] += 1
            released = self._force_released.get(pod.phone_id)
            if released is not None and at - max(released, self._k8s_back_at) <= (
                self.grace.release_grace
            ):
                self.stats["I2 within the grace of a claim deleted by hand"] += 1
                self._suspects.setdefault(pod.uid, _Suspect(pod, suspect.seen_at))
                return
            if released is not None and self._k8s_blind():
                self._suspects.setdefault(pod.uid, _Suspect(pod, suspect.seen_at))
                return
            if pod.uid in self._reported:
                return
            self._reported.add(pod.uid)
            holder = _holder_uid(claim)
            said = "no claim" if claim is None else f"the claim names holder uid {holder}"
            self._violate(
                at,
                "I2",
                f"pod {pod.key} (uid {pod.uid}, binding uid {pod.owner_uid}) is live while "
                f"phone {pod.phone_id} has {said}",
            )

    def _prove_stop(self, stop: _StopSuspect, at: float) -> None:
        pod = stop.pod
        self.stats["I3 suspects"] += 1
        if not _is_live(self._reader.pod(pod.namespace, pod.name), pod.uid):
            return
        claim = self._reader.claim(pod.phone_id)
        if claim is None or claim["metadata"].get("uid") != stop.claim.uid:
            return
        with self._lock:
            self._violate(
                at,
                "I3",
                f"phone {pod.phone_id} was stopped through the Open API between "
                f"{stop.before:.1f}s and {stop.after:.1f}s while pod {pod.key} of its holder "
                f"{stop.claim.holder} was live throughout",
            )

    def _k8s_blind(self) -> bool:
        return any(reason.startswith("k8s:") for reason in self._blind.open.values())

    def _check_running_phones(self, at: float) -> None:
        if self._blind.open:
            return
        for binding in self._bindings.values():
            if binding.phase != "Running" or binding.deleting or binding.phone_id is None:
                continue
            phone = self._phones.get(binding.phone_id)
            self.stats["checks I4"] += 1
            if phone is None or phone.off_since is None or binding.running_since is None:
                continue
            self.stats["I4 Running while the phone is off (evaluations)"] += 1
            since = max(phone.off_since, binding.running_since, self._blind.last_end)
            if at - since <= self.grace.running_off_grace:
                continue
            report = (binding.uid, phone.off_since)
            if report in self._i4_reported:
                continue
            self._i4_reported.add(report)
            self._violate(
                at,
                "I4",
                f"binding {binding.key} has reported Running for {at - since:.1f}s (outside "
                f"blind windows) while phone {binding.phone_id} is off (seen off since "
                f"{phone.off_since:.1f}s)",
            )
