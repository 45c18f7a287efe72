"""The pod step of a pass: one worker pod per binding, replaced when its spec changes, and a
worker that stays not ready detected as stuck.

The pods watch (``ObservedPods``) keeps each pod's latest state and wakes the binding when it
changes, so a pass reads its pod from the view; a Running binding's periodic pass reads it from
the API server, since the view can miss a deletion.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding
from phonefleet_operator.render import build_pod, needs_update, pod_name
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.ports import Kube
from phonefleet_operator.services.report import Report
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
        self, kube: Kube, pods: ObservedPods, adb: AdbStep, settings: OperatorSettings
    ) -> None:
        self._kube = kube
        self._pods = pods
        self._adb = adb
        self._settings = settings

    async def ensure(
        self, binding: PhoneBinding, phone: Phone, report: Report, *, periodic: bool
    ) -> float:
        """Bring the binding's pod to the desired state; the seconds until the next pass."""
        s = self._settings
        desired = build_pod(binding, phone.id, s)
        name = desired["metadata"]["name"]
        # The pods watch keeps the pod's latest state and wakes the binding when it changes. A
        # pod it has not shown is created at once; only if one exists after all is it read.
        live = None if periodic else self._pods.get(binding.namespace, name)
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
            report.phase(Phase.BOUND, "PodStarting", f"Pod {name} is starting")
            return s.pod_poll_seconds
        if live["metadata"].get("deletionTimestamp"):
            report.phase(Phase.BOUND, "PodReplacing", f"Waiting for the old Pod {name} to go")
            return s.pod_poll_seconds
        if needs_update(live, desired):
            await self._kube.delete_pod(binding.namespace, name, live["metadata"]["uid"])
            report.event("DeletedPod", f"Deleted Pod {name}: its spec changed")
            report.phase(Phase.BOUND, "PodReplacing", f"Replacing Pod {name}")
            return s.pod_poll_seconds
        if pod_is_ready(live):
            report.condition(ConditionType.WORKER_READY, "True", "PodReady", f"Pod {name} is ready")
            report.phase(Phase.RUNNING, "WorkerRunning", f"Pod {name} drives phone {phone.id}")
            return next_periodic_check(report.now, s.running_recheck_seconds)
        return await self._not_ready(live, phone, report)

    async def remove(self, binding: PhoneBinding, report: Report, *, why: str) -> None:
        """Delete the binding's pod, if there is one."""
        name = pod_name(binding.name)
        if await self._kube.get_pod(binding.namespace, name) is not None:
            await self._kube.delete_pod(binding.namespace, name)
            report.event("DeletedPod", f"Deleted Pod {name}: {why}")
        report.status.pod_name = None

    async def _not_ready(self, live: dict[str, Any], phone: Phone, report: Report) -> float:
        """A pod that exists, is current and not ready: starting, or a worker that cannot work."""
        s = self._settings
        name = live["metadata"]["name"]
        if (live.get("status") or {}).get("phase") in (None, "Pending"):
            report.condition(
                ConditionType.WORKER_READY, "False", "PodStarting", f"Pod {name} is starting"
            )
            report.phase(Phase.BOUND, "PodStarting", f"Pod {name} is starting")
            return s.pod_poll_seconds
        report.condition(
            ConditionType.WORKER_READY, "False", "PodNotReady", f"Pod {name} is not ready"
        )
        report.phase(Phase.BOUND, "PodNotReady", f"Pod {name} is not ready")
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
