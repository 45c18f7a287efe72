"""The pod step of a pass: one worker pod per binding, replaced when its spec changes, and a
worker that stays not ready detected as stuck.

The pods watch (``ObservedPods``, fed by :mod:`phonefleet_operator.k8s.watch`) keeps each pod's
latest state and wakes the binding when it changes, so a pass reads its pod from the view. The
watch learns deletions that happened during a watch gap when it lists again, so a Running
binding's periodic pass trusts the view too: a fleet at rest reads no pod.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding
from phonefleet_operator.render import build_pod, outdated, pod_name, pod_spec_hash
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import Kube
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.worker_failure import worker_failure
from phonefleet_operator.settings import OperatorSettings

__all__ = ["WorkerPodStep", "next_periodic_check", "pod_is_ready"]


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conditions)


def next_periodic_check(now: datetime, period: float) -> float:
    """Seconds until a Running binding's next check, on a grid shared by every binding.

    The checks of all Running bindings fall due together (every ``period`` seconds on the wall
    clock), so their phone status questions share full batch calls: about ten calls a minute for
    a thousand bindings, instead of one small call per gathering window. The first check after a
    binding became Running comes after half a period or more.
    """
    delay = period - now.timestamp() % period
    return delay + period if delay < period / 2 else delay


class WorkerPodStep:
    """Creates, replaces and watches over each binding's worker pod."""

    def __init__(
        self,
        kube: Kube,
        pods: ObservedPods,
        adb: AdbStep,
        settings: OperatorSettings,
        unsettled: Callable[[str, str], str | None] = lambda namespace, name: None,
    ) -> None:
        # Why a binding's new pod must wait: an attempt of its jobs may still run on the pod
        # that went away (services/jobs/service.py:JobService.unsettled).
        self._unsettled = unsettled
        self._kube = kube
        self._pods = pods
        self._adb = adb
        self._settings = settings
        # Per binding uid: the inputs of its pod's spec hash and that hash. Rendering and
        # hashing the pod on every pass was a quarter of a pass's CPU (docs/scale.md, Round 4b).
        self._hashes: dict[str, tuple[tuple[str, ...], str]] = {}

    async def ensure(
        self, binding: PhoneBinding, phone: Phone, report: Report, *, trust_view: bool
    ) -> float:
        """Bring the binding's pod to the desired state; the seconds until the next pass.

        With ``trust_view`` the pod is taken from the pods view. A pod in transition (not ready,
        or terminating) of which the view has said nothing new for longer than
        ``pod_poll_seconds`` is read from the API server: a binding waiting on such a pod does
        not wait on the watch's next relist. A ready pod is trusted (a fleet at rest reads
        nothing). A pod the view has not shown is created at once and read only if the
        create says one exists.
        """
        s = self._settings
        namespace, name = binding.namespace, pod_name(binding.name)
        report.status.pod_name = name
        live = self._pods.get(namespace, name) if trust_view else None
        if (
            live is not None
            and _in_transition(live)
            and self._pods.age(namespace, name) >= s.pod_poll_seconds
        ):
            live = await self._read(namespace, name)
        held = self._unsettled(namespace, binding.name) if live is None else None
        if held:
            report.condition(ConditionType.WORKER_READY, "False", "FencingAttempt", held)
            report.phase(Phase.BOUND, "FencingAttempt", f"Pod {name} is not created yet: {held}")
            return s.pod_poll_seconds
        if live is None and await self._kube.create_pod(build_pod(binding, phone.id, s)):
            report.event("CreatedPod", f"Created Pod {name}")
        elif live is None:
            live = await self._read(namespace, name)
        if live is None:
            return self._starting(name, report, queued=True)
        if live["metadata"].get("deletionTimestamp"):
            report.phase(Phase.BOUND, "PodReplacing", f"Waiting for the old Pod {name} to go")
            return s.pod_poll_seconds
        if outdated(live, self._desired_hash(binding, phone.id)):
            return await self._replace(binding, phone, live, report, trust_view=trust_view)
        if pod_is_ready(live):
            report.condition(ConditionType.WORKER_READY, "True", "PodReady", f"Pod {name} is ready")
            report.phase(Phase.RUNNING, "WorkerRunning", f"Pod {name} drives phone {phone.id}")
            return next_periodic_check(report.now, s.running_recheck_seconds)
        return await self._not_ready(live, phone, report)

    def ready_in_view(self, binding: PhoneBinding, phone_id: str) -> bool:
        """The binding's pod for ``phone_id``, as the pods watch last showed it, is current,
        ready and not being deleted (the power step takes it as word that the phone runs)."""
        live = self._pods.get(binding.namespace, pod_name(binding.name))
        return (
            live is not None
            and not _in_transition(live)
            and not outdated(live, self._desired_hash(binding, phone_id))
        )

    def forget(self, uid: str) -> None:
        """The binding ``uid`` is gone: drop its pod's memoised spec hash."""
        self._hashes.pop(uid, None)

    def tracked(self) -> int:
        """How many bindings have a memoised pod spec hash."""
        return len(self._hashes)

    def _desired_hash(self, binding: PhoneBinding, phone_id: str) -> str:
        """The spec hash :func:`build_pod` would give the binding's pod, memoised per binding.

        The key holds every input the hash reads besides the settings (fixed for the life of
        this step): the binding's name (labels, the ADB Secret's name), the phone id and the
        worker and Appium overrides of its spec.
        """
        spec = binding.spec
        key = (binding.name, phone_id, spec.worker.model_dump_json(), spec.appium.model_dump_json())
        memo = self._hashes.get(binding.uid)
        if memo is not None and memo[0] == key:
            return memo[1]
        value = pod_spec_hash(binding, phone_id, self._settings)
        self._hashes[binding.uid] = (key, value)
        return value

    async def remove(self, binding: PhoneBinding, report: Report, *, why: str) -> None:
        """Delete the binding's pod, if there is one."""
        name = pod_name(binding.name)
        found = await self._kube.get_pod(binding.namespace, name)
        if found is not None and await self._kube.delete_pod(binding.namespace, name):
            report.event("DeletedPod", f"Deleted Pod {name}: {why}")
        report.status.pod_name = None

    async def _replace(
        self,
        binding: PhoneBinding,
        phone: Phone,
        live: dict[str, Any],
        report: Report,
        *,
        trust_view: bool,
    ) -> float:
        """Delete a pod whose spec is outdated; the new one is created once it is gone."""
        namespace, name = binding.namespace, live["metadata"]["name"]
        if not await self._kube.delete_pod(namespace, name, live["metadata"]["uid"]):
            # Not the pod we looked at (its uid precondition failed) or gone: nothing was
            # deleted. Look at the pod there is, from the API server this time.
            self._pods.gone(namespace, name)
            if trust_view:
                return await self.ensure(binding, phone, report, trust_view=False)
            return self._settings.boot_poll_seconds  # replaced between our read and delete
        report.event("DeletedPod", f"Deleted Pod {name}: its spec changed")
        report.phase(Phase.BOUND, "PodReplacing", f"Replacing Pod {name}")
        return self._settings.pod_poll_seconds

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod from the API server; the view is corrected with it."""
        live = await self._kube.get_pod(namespace, name)
        self._pods.refresh(namespace, name, live)
        return live

    async def _not_ready(self, live: dict[str, Any], phone: Phone, report: Report) -> float:
        """A pod that exists, is current and not ready: starting, or a worker that cannot work."""
        s = self._settings
        name = live["metadata"]["name"]
        if (live.get("status") or {}).get("phase") in (None, "Pending"):
            return self._starting(name, report, queued=_queued(live))
        failure = worker_failure(live)  # the worker's own words, when it left any
        reason, why = (failure.reason, failure.message) if failure else ("PodNotReady", "")
        message = f"Pod {name} is not ready" + (f": {why}" if why else "")
        report.condition(ConditionType.WORKER_READY, "False", reason, message)
        report.phase(Phase.BOUND, reason, message)
        stuck_in = self._until_stuck(live, report.provisioned_at(), report.now)
        if stuck_in is not None and stuck_in <= 0:
            # The worker cannot connect: the ADB data may be stale. Fetch it again, once per
            # threshold, and let the worker pick the new Secret content up without a restart.
            await self._adb.reprovision(phone.id, report)
            report.event(
                "ReprovisioningAdb",
                f"Pod {name} stayed not ready: fetching the ADB "
                f"connection data of phone {phone.id} again",
                warning=True,
            )
            return s.boot_poll_seconds  # the new ADB data is polled for next
        # Readiness changes wake the binding; the threshold passing does not, so look then.
        return s.pod_poll_seconds if stuck_in is None else min(s.pod_poll_seconds, stuck_in)

    def _starting(self, name: str, report: Report, *, queued: bool) -> float:
        """The pod ``name`` is starting: the binding is Bound and looks again in a poll.
        ``queued``: no node has started it yet (see :func:`_queued`)."""
        report.pod_queued = queued
        message = f"Pod {name} is starting"
        report.condition(ConditionType.WORKER_READY, "False", "PodStarting", message)
        report.phase(Phase.BOUND, "PodStarting", message)
        return self._settings.pod_poll_seconds

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


def _queued(pod: dict[str, Any]) -> bool:
    """The pod waits in the cluster's queues: the scheduler's (no condition yet), or its node's
    (bound to it, ``PodScheduled`` its only condition, no container status). A node that takes
    the pod writes its other conditions at once (a kubelet: ``Initialized``, ``Ready``
    False, containers ``ContainerCreating``), and a pod the scheduler cannot place gets
    ``PodScheduled`` False: neither is queued, and a reader should see why it waits."""
    status = pod.get("status") or {}
    if status.get("containerStatuses"):
        return False
    return all(
        item.get("type") == "PodScheduled" and item.get("status") == "True"
        for item in status.get("conditions") or ()
    )


def _in_transition(pod: dict[str, Any]) -> bool:
    """Not ready, or being deleted: a state a binding waits on to change."""
    return not pod_is_ready(pod) or bool(pod["metadata"].get("deletionTimestamp"))


def _pod_unready_since(pod: dict[str, Any]) -> str:
    for item in pod.get("status", {}).get("conditions") or []:
        if item.get("type") == "Ready" and item.get("lastTransitionTime"):
            return str(item["lastTransitionTime"])
    return str(pod["metadata"].get("creationTimestamp", ""))


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
