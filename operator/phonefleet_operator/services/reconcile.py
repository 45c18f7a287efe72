"""The one idempotent reconcile of a PhoneBinding: resolve, claim, power, ADB, pod, status.

Each pass looks at the world as it is (the claim, the phone's status in Geelark, the pod), does at
most the next step towards the spec, writes the status if it changed and says when to look again.
Create, update, resume, operator restarts and periodic checks all run this same pass; nothing
depends on which event came first. The ADB Secret is written, never read: the operator needs no
right to read Secrets outside its own namespace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from phonefleet_operator.errors import (
    GeelarkAuthError,
    GeelarkUnavailable,
    InvalidSpec,
    KubernetesUnavailable,
    PermanentFault,
    PhoneNotFound,
    PhoneNotReady,
    TemporaryFault,
)
from phonefleet_operator.geelark import Phone
from phonefleet_operator.geelark import PhoneStatus as Power
from phonefleet_operator.models import (
    AdbConnection,
    ConditionType,
    Phase,
    PhoneBinding,
    PhoneBindingStatus,
    PhoneStatus,
    rfc3339,
)
from phonefleet_operator.render import (
    adb_secret_name,
    build_adb_secret,
    build_claim,
    build_pod,
    needs_update,
    pod_name,
)
from phonefleet_operator.services.admission import spec_problems
from phonefleet_operator.services.claims import BindingRef, ClaimService
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import Kube, PhoneDirectory, PhonePower
from phonefleet_operator.services.report import Report
from phonefleet_operator.settings import OperatorSettings

__all__ = ["BindingReconciler", "binding_ref", "pod_is_ready"]

log = logging.getLogger(__name__)

# Statuses remembered as replaced by our own writes, per binding (see _caught_up).
_SUPERSEDED_KEPT = 3
# A phone not polled for this long no longer counts as booting (see _boot_poll_delay).
_BOOTING_FORGOTTEN_SECONDS = 30.0

_POWER_TEXT = {
    Power.RUNNING: PhoneStatus.RUNNING,
    Power.STARTING: PhoneStatus.STARTING,
    Power.SHUT_DOWN: PhoneStatus.STOPPED,
    Power.EXPIRED: PhoneStatus.EXPIRED,
}


def binding_ref(binding: PhoneBinding) -> BindingRef:
    """The binding's identity, ordered by age for the oldest-waiter rule."""
    created = binding.metadata.creation_timestamp
    return BindingRef(
        created=rfc3339(created) if created else "",  # the API server's own format, as in the index
        namespace=binding.namespace,
        name=binding.name,
        uid=binding.uid,
    )


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)


def _pod_unready_since(pod: dict[str, Any]) -> str:
    for item in pod.get("status", {}).get("conditions") or []:
        if item.get("type") == "Ready" and item.get("lastTransitionTime"):
            return str(item["lastTransitionTime"])
    return str(pod["metadata"].get("creationTimestamp", ""))


class BindingReconciler:
    """Drives one binding towards its spec; shared by every binding of the operator."""

    def __init__(
        self,
        *,
        directory: PhoneDirectory,
        power: PhonePower,
        kube: Kube,
        claims: ClaimService,
        settings: OperatorSettings,
        pods: ObservedPods | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        job_tokens: JobTokens | None = None,
    ) -> None:
        self._job_tokens = job_tokens or JobTokens()
        self._directory = directory
        self._pods = pods if pods is not None else ObservedPods()
        self._power = power
        self._kube = kube
        self._claims = claims
        self._settings = settings
        self._clock = clock
        # When ADB was last switched on, per phone (in memory: a restart asks once more).
        self._adb_enabled_at: dict[str, float] = {}
        # When Geelark last said the phone runs, per phone (in memory: a restart asks again).
        self._running_seen_at: dict[str, float] = {}
        # When each booting phone was last polled (see _boot_poll_delay).
        self._booting: dict[str, float] = {}
        # Per binding uid: statuses our later writes replaced, and the status last written.
        self._written: dict[str, tuple[list[dict[str, Any]], PhoneBindingStatus]] = {}

    async def reconcile(
        self, binding: PhoneBinding, waiters: Iterable[BindingRef]
    ) -> tuple[Report, float]:
        """One pass: returns what it found (status, Events) and the seconds until the next pass."""
        report = Report(binding, self._clock())
        body_status = binding.status.to_dict()
        binding = self._caught_up(binding, body_status, report)
        s = self._settings
        try:
            delay = await self._converge(binding, waiters, report)
        except GeelarkAuthError as error:
            report.condition(ConditionType.GEELARK_REACHABLE, "False", error.reason, str(error))
            report.phase(Phase.ERROR, error.reason, str(error), warning=True)
            delay = s.error_recheck_seconds
        except GeelarkUnavailable as error:
            # "Could not check" is not "not found": keep the phase, keep the pod, try again.
            report.condition(
                ConditionType.GEELARK_REACHABLE, "False", "GeelarkUnavailable", str(error)
            )
            delay = max(float(error.delay or 0), s.geelark_retry_seconds)
            log.warning("Geelark unavailable for %s: %s", binding.namespaced_name, error)
        except KubernetesUnavailable as error:
            delay = float(error.delay or s.geelark_retry_seconds)
            log.warning("Kubernetes API unavailable for %s: %s", binding.namespaced_name, error)
        except PermanentFault as error:
            report.phase(Phase.ERROR, error.reason, str(error), warning=True)
            delay = s.error_recheck_seconds
        except TemporaryFault as error:
            # Waiting (a busy phone, ADB coming up): keep what runs, say why, look again later.
            report.status.message = str(error)
            delay = float(error.delay or s.geelark_retry_seconds)
        self._remember(binding.uid, body_status, report)
        return report, delay

    def _caught_up(
        self, binding: PhoneBinding, body_status: dict[str, Any], report: Report
    ) -> PhoneBinding:
        """The binding with the status this operator last wrote, if the body still predates it.

        kopf hands the loop the body of the last watch event it has processed; under load (a
        thousand bindings patching their status) that can be the body from before our last status
        patch. A pass working from it would redo the last steps: fetch the ADB data again, rewrite
        the Secret, post the same Events once more. Our last write succeeded (a failed one is
        forgotten, see :meth:`forget_written`), so the patch is computed against it: a stale body
        does not make the pass send the same status again.
        """
        memo = self._written.get(binding.uid)
        if memo is None:
            return binding
        superseded, latest = memo
        if body_status not in superseded:
            del self._written[binding.uid]  # the body has caught up (or moved on without us)
            return binding
        report.base = latest
        report.status = latest.model_copy(deep=True)
        report.status.observed_generation = binding.metadata.generation
        return binding.model_copy(update={"status": latest})

    def forget_written(self, uid: str) -> None:
        """The last status of ``uid`` could not be written: the next pass trusts the body again."""
        self._written.pop(uid, None)

    def _remember(self, uid: str, body_status: dict[str, Any], report: Report) -> None:
        """Note the status this pass writes, and which statuses it supersedes."""
        written = report.status.to_dict()
        if written == body_status:
            self._written.pop(uid, None)
            return
        superseded, latest = self._written.get(uid, ([], None))
        older = [*superseded, body_status]
        if latest is not None and latest.to_dict() != written:
            older.append(latest.to_dict())
        self._written[uid] = (older[-_SUPERSEDED_KEPT:], report.status.model_copy(deep=True))

    # ------------------------------------------------------------------ the steps

    async def _converge(
        self, binding: PhoneBinding, waiters: Iterable[BindingRef], report: Report
    ) -> float:
        s = self._settings
        me = binding_ref(binding)
        problems = spec_problems(binding.spec)
        if problems:  # the webhook refuses these; this holds when it was down or bypassed
            raise InvalidSpec("; ".join(problems))
        phone = await self._resolve(binding, report)
        if phone is None:
            return s.not_found_recheck_seconds
        report.geelark_answered()

        previous = binding.status.phone.id if binding.status.phone else None
        if previous and previous != phone.id:
            if not await self.let_go(binding, previous, stop_phone=self._stops(binding)):
                self._bound(
                    report, "Rebinding", f"Releasing phone {previous} before taking {phone.id}"
                )
                return s.pod_poll_seconds
            report.event("Rebound", f"Released phone {previous}: spec.phoneId now names {phone.id}")
            report.phone(adb_provisioned_at=None, live_view_url=None, status=None)
        report.phone(id=phone.id, serial_name=phone.serial_name, reference=binding.spec.phone_id)

        claim = await self._claims.acquire(
            me,
            phone.id,
            build_claim(binding, phone.id, phone.serial_name),
            waiters,
            trust_view=not self._periodic(binding),
        )
        if not claim.held:
            await self._remove_pod(binding, report, why="the phone is not held by this binding")
            holder = claim.holder or claim.waiting_behind or "another binding"
            report.status.conflict_with = claim.holder or claim.waiting_behind
            report.condition(
                ConditionType.CLAIMED,
                "False",
                "HeldByAnother",
                f"Phone {phone.id} is held by {holder}",
            )
            report.phase(
                Phase.CONFLICT,
                "Conflict",
                f"Phone {phone.id} ({phone.serial_name}) is held by {holder}; "
                "this binding takes it when that one goes",
                warning=True,
            )
            return s.conflict_recheck_seconds
        report.status.conflict_with = None
        if claim.created:
            report.event("Claimed", f"Created PhoneClaim {phone.id}")
        report.condition(
            ConditionType.CLAIMED, "True", "Claimed", f"This binding holds phone {phone.id}"
        )

        if binding.spec.suspend:
            return await self._suspend(binding, phone, report)
        return await self._run(binding, phone, report)

    async def _resolve(self, binding: PhoneBinding, report: Report) -> Phone | None:
        """The phone the spec names; a phone already bound stays bound by its id (renames)."""
        known = binding.status.phone
        if known and known.id and known.reference == binding.spec.phone_id:
            return Phone(id=known.id, serial_name=known.serial_name or "")
        try:
            return await self._directory.resolve(binding.spec.phone_id)
        except PhoneNotFound as error:
            previous = known.id if known else None
            if previous and not await self.let_go(
                binding, previous, stop_phone=self._stops(binding)
            ):
                return None  # the old pod is terminating: keep status.phone and come back
            report.status.phone = None
            report.status.pod_name = None
            report.geelark_answered()
            report.condition(ConditionType.CLAIMED, "False", "PhoneNotFound", str(error))
            report.phase(Phase.PHONE_NOT_FOUND, "PhoneNotFound", str(error), warning=True)
            return None

    async def _suspend(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        await self._remove_pod(binding, report, why="the binding is suspended")
        await self._drop_adb_secret(binding, report)
        if (binding.status.phone and binding.status.phone.status) != PhoneStatus.STOPPED:
            await self._power.stop(phone.id)
            self._running_seen_at.pop(phone.id, None)
            report.event("StoppedPhone", f"Stopped phone {phone.id}: the binding is suspended")
        report.phone(status=PhoneStatus.STOPPED, live_view_url=None)
        report.condition(
            ConditionType.PHONE_READY, "False", "Suspended", "The binding is suspended"
        )
        report.condition(
            ConditionType.WORKER_READY, "False", "Suspended", "The binding is suspended"
        )
        report.phase(
            Phase.SUSPENDED, "Suspended", f"Phone {phone.id} is stopped and still reserved"
        )
        return self._settings.running_recheck_seconds

    async def _run(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        s = self._settings
        power = await self._power_status(binding, phone, report)
        report.phone(status=_POWER_TEXT.get(power, PhoneStatus.UNKNOWN))
        if power is Power.EXPIRED:
            message = f"Phone {phone.id} has expired in Geelark: renew it, or bind another phone"
            report.condition(ConditionType.PHONE_READY, "False", "PhoneExpired", message)
            report.phase(Phase.ERROR, "PhoneExpired", message, warning=True)
            return s.error_recheck_seconds
        if power is not Power.RUNNING:
            # ADB data does not survive a restart for sure: fetch it afresh once the phone runs.
            await self._drop_adb_secret(binding, report)
            if power is Power.SHUT_DOWN:
                started = await self._power.start(phone.id)
                report.phone(status=PhoneStatus.STARTING, live_view_url=started.url)
                report.event("StartedPhone", f"Started phone {phone.id}")
            report.condition(
                ConditionType.PHONE_READY, "False", "PhoneStarting", f"Phone {phone.id} is starting"
            )
            self._bound(report, "PhoneStarting", f"Phone {phone.id} is starting")
            return self._boot_poll_delay(phone.id, report.now)

        self._booting.pop(phone.id, None)
        if report.provisioned_at() is None:
            try:
                await self._provision_adb(binding, phone, report)
            except PhoneNotReady as error:
                report.condition(ConditionType.PHONE_READY, "False", "AdbStarting", str(error))
                self._bound(report, "AdbStarting", f"ADB of phone {phone.id} is starting")
                # Enabling ADB takes Geelark about 3 s (the fault's delay): polling sooner only
                # spends the account's budget on "not yet".
                return max(s.boot_poll_seconds, float(error.delay or 0))
        report.condition(
            ConditionType.PHONE_READY,
            "True",
            "PhoneRunning",
            f"Phone {phone.id} runs and its ADB endpoint is provisioned",
        )
        return await self._ensure_pod(binding, phone, report)

    async def _power_status(self, binding: PhoneBinding, phone: Phone, report: Report) -> Power:
        """The phone's power state; a binding still coming up reuses a recent "running" answer.

        Until its pod is ready, a binding looks again every few seconds (ADB, then the pod).
        Asking Geelark each time whether the phone still runs would spend the account's budget on
        an answer known seconds ago: a "running" answer is trusted for ``running_recheck_seconds``,
        which is as long as a Running binding waits between two checks anyway. A Running
        binding's periodic pass always asks.
        """
        now = report.now.timestamp()
        seen = self._running_seen_at.get(phone.id)
        if (
            seen is not None
            and now - seen < self._settings.running_recheck_seconds
            and binding.status.phase != Phase.RUNNING
        ):
            return Power.RUNNING
        power = await self._power.status(phone.id)
        if power is Power.RUNNING:
            self._running_seen_at[phone.id] = now
        else:
            self._running_seen_at.pop(phone.id, None)
        return power

    def _boot_poll_delay(self, phone_id: str, now: datetime) -> float:
        """Seconds until the next status poll of a booting phone: ``boot_poll_seconds``, or
        longer when so many phones boot at once that polling each that often would overrun the
        Geelark budget and hold back the ADB calls of the phones already up."""
        moment = now.timestamp()
        horizon = moment - _BOOTING_FORGOTTEN_SECONDS
        self._booting = {k: t for k, t in self._booting.items() if t > horizon}
        self._booting[phone_id] = moment
        interval = self._power.poll_interval(len(self._booting))
        return max(self._settings.boot_poll_seconds, interval)

    def _next_periodic_check(self, now: datetime) -> float:
        """Seconds until a Running binding's next check, on a grid shared by every binding.

        The checks of all Running bindings fall due together (every ``running_recheck_seconds``
        on the wall clock), so their phone status questions share full batch calls: about ten
        calls a minute for a thousand bindings, instead of one small call per gathering window.
        The first check after a binding became Running comes after half a period or more.
        """
        period = self._settings.running_recheck_seconds
        delay = period - now.timestamp() % period
        return delay + period if delay < period / 2 else delay

    async def _provision_adb(self, binding: PhoneBinding, phone: Phone, report: Report) -> None:
        """Write the phone's ADB endpoint into the binding's Secret, enabling ADB when it is off.

        Enabling takes Geelark about 3 s and asking again restarts that delay, so ADB is switched
        on once and then only polled; it is switched on again only if it stayed off for long.
        """
        try:
            endpoint = await self._power.adb_endpoint(phone.id)
        except PhoneNotReady:
            now = report.now.timestamp()
            asked = self._adb_enabled_at.get(phone.id)
            if asked is None or now - asked >= self._settings.adb_enable_timeout_seconds:
                await self._power.enable_adb(phone.id)
                self._adb_enabled_at[phone.id] = now
            raise
        self._adb_enabled_at.pop(phone.id, None)
        connection = AdbConnection(
            ip=endpoint.ip, port=str(endpoint.port), password=endpoint.password, phone_id=phone.id
        )
        token = self._job_tokens.token_for(binding.namespace, binding.name, binding.uid)
        await self._kube.put_secret(build_adb_secret(binding, connection, token))
        report.phone(adb_provisioned_at=rfc3339(report.now))
        report.event(
            "ProvisionedAdb",
            f"Wrote ADB connection data of phone {phone.id} to Secret "
            f"{adb_secret_name(binding.name)}",
        )

    async def _drop_adb_secret(self, binding: PhoneBinding, report: Report) -> None:
        """Delete the ADB Secret if this binding wrote one for the phone's current power-on."""
        if report.provisioned_at() is not None:
            await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
            report.phone(adb_provisioned_at=None)

    async def _ensure_pod(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        s = self._settings
        desired = build_pod(binding, phone.id, s)
        name = desired["metadata"]["name"]
        # The pods watch keeps the pod's latest state and wakes the binding when it changes. A
        # pod it has not shown is created at once; only if one exists after all is it read.
        live = None if self._periodic(binding) else self._pods.get(binding.namespace, name)
        report.status.pod_name = name
        if live is None and await self._kube.create_pod(desired):
            report.event("CreatedPod", f"Created Pod {name}")
        elif live is None:
            live = await self._kube.get_pod(binding.namespace, name)
            self._pods.refresh(binding.namespace, name, live)
        if live is None:
            report.condition(
                ConditionType.WORKER_READY, "False", "PodStarting", f"Pod {name} is starting"
            )
            self._bound(report, "PodStarting", f"Pod {name} is starting")
            return s.pod_poll_seconds
        if live["metadata"].get("deletionTimestamp"):
            self._bound(report, "PodReplacing", f"Waiting for the old Pod {name} to go")
            return s.pod_poll_seconds
        if needs_update(live, desired):
            await self._kube.delete_pod(binding.namespace, name, live["metadata"]["uid"])
            report.event("DeletedPod", f"Deleted Pod {name}: its spec changed")
            self._bound(report, "PodReplacing", f"Replacing Pod {name}")
            return s.pod_poll_seconds
        if pod_is_ready(live):
            report.condition(ConditionType.WORKER_READY, "True", "PodReady", f"Pod {name} is ready")
            report.phase(Phase.RUNNING, "WorkerRunning", f"Pod {name} drives phone {phone.id}")
            return self._next_periodic_check(report.now)
        return await self._pod_not_ready(live, phone, report)

    async def _pod_not_ready(self, live: dict[str, Any], phone: Phone, report: Report) -> float:
        """A pod that exists, is current and not ready: starting, or a worker that cannot work."""
        s = self._settings
        name = live["metadata"]["name"]
        if (live.get("status") or {}).get("phase") in (None, "Pending"):
            report.condition(
                ConditionType.WORKER_READY, "False", "PodStarting", f"Pod {name} is starting"
            )
            self._bound(report, "PodStarting", f"Pod {name} is starting")
            return s.pod_poll_seconds
        report.condition(
            ConditionType.WORKER_READY, "False", "PodNotReady", f"Pod {name} is not ready"
        )
        self._bound(report, "PodNotReady", f"Pod {name} is not ready")
        stuck_in = self._until_stuck(live, report.provisioned_at(), report.now)
        if stuck_in is not None and stuck_in <= 0:
            # The worker cannot connect: the ADB data may be stale. Fetch it again, once per
            # threshold, and let the worker pick the new Secret content up without a restart.
            # Switching ADB on again clears a stuck endpoint (code 50000 in Geelark's words);
            # the next passes poll for the new data and replace the Secret's content.
            report.phone(adb_provisioned_at=None)
            await self._power.enable_adb(phone.id)
            self._adb_enabled_at[phone.id] = report.now.timestamp()
            report.event(
                "ReprovisioningAdb",
                f"Pod {name} stayed not ready: fetching the ADB "
                f"connection data of phone {phone.id} again",
                warning=True,
            )
            return s.boot_poll_seconds  # the new ADB data is polled for next
        # Readiness changes wake the binding; the threshold passing does not, so look then.
        return s.pod_poll_seconds if stuck_in is None else min(s.pod_poll_seconds, stuck_in)

    def _until_stuck(
        self, pod: dict[str, Any], provisioned: datetime | None, now: datetime
    ) -> float | None:
        """Seconds until a not-ready worker counts as stuck (0 or less: it does); None when
        the pod does not say since when it is not ready."""
        threshold = self._settings.worker_unready_threshold_seconds
        since = _parse_time(_pod_unready_since(pod))
        if since is None:
            return None
        due = since.timestamp() + threshold
        if provisioned is not None:
            due = max(due, provisioned.timestamp() + threshold)
        return due - now.timestamp()

    @staticmethod
    def _periodic(binding: PhoneBinding) -> bool:
        """A Running binding's pass: it reads its claim and pod from the API server.

        The watch views can miss a deletion (kopf relists after a watch gap but reports no
        deletions), so the once-a-minute check of a Running binding does not rely on them.
        """
        return binding.status.phase == Phase.RUNNING

    @staticmethod
    def _stops(binding: PhoneBinding) -> bool:
        return binding.spec.release_policy == "Stop"

    def _bound(self, report: Report, reason: str, message: str) -> None:
        report.phase(Phase.BOUND, reason, message)

    async def _remove_pod(self, binding: PhoneBinding, report: Report, *, why: str) -> None:
        name = pod_name(binding.name)
        if await self._kube.get_pod(binding.namespace, name) is not None:
            await self._kube.delete_pod(binding.namespace, name)
            report.event("DeletedPod", f"Deleted Pod {name}: {why}")
        report.status.pod_name = None

    # ------------------------------------------------------------------ letting go

    async def finalize(self, binding: PhoneBinding) -> bool:
        """Release everything a deleted binding holds; False while its pod is still terminating."""
        self._written.pop(binding.uid, None)
        phone_id = binding.status.phone.id if binding.status.phone else None
        if phone_id is None:
            # A crash between claiming and writing the status leaves no id behind: look it up,
            # so a phone this binding started is never left running.
            try:
                phone_id = (await self._directory.resolve(binding.spec.phone_id)).id
            except PermanentFault:
                phone_id = None
        if phone_id is None:
            await self._kube.delete_pod(binding.namespace, pod_name(binding.name))
            await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
            return True
        return await self.let_go(binding, phone_id, stop_phone=self._stops(binding))

    async def let_go(self, binding: PhoneBinding, phone_id: str, *, stop_phone: bool) -> bool:
        """Give up ``phone_id``: no pod, no Secret, the phone stopped (if asked), the claim gone.

        Returns False while the pod is still terminating (call again); the phone is stopped only
        after its worker is gone, and only if this binding holds its claim.
        """
        name = pod_name(binding.name)
        pod = await self._kube.get_pod(binding.namespace, name)
        if pod is not None:
            await self._kube.delete_pod(binding.namespace, name)
            return False
        await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
        me = binding_ref(binding)
        if not await self._claims.holds(me, phone_id):
            return True
        if stop_phone:
            try:
                await self._power.stop(phone_id)
                self._running_seen_at.pop(phone_id, None)
            except PhoneNotFound:
                log.info(
                    "Phone %s of %s is gone from Geelark: nothing to stop",
                    phone_id,
                    binding.namespaced_name,
                )
            else:
                log.info("Stopped phone %s of %s", phone_id, binding.namespaced_name)
        await self._claims.release(me, phone_id)
        return True


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
