"""Letting a phone go: the suspend step, a deleted binding's release, and every stop of a phone
a binding holds (the orphan sweep stops phones whose holder is gone: see services/claims.py).

Billing is per running minute, so a phone this operator started is stopped when its binding is
suspended or deleted (unless the binding says ``releasePolicy: Keep``). Two rules keep that from
hurting anyone else or leaking money (and a third keeps it from cutting a job short):

- A phone is stopped only when a read of its claim from the API server, made right before the
  stop call, shows this binding as the holder. The claims view is never enough: it can lag a
  force-release by a watch event.
- A phone is stopped, and a claim let go, only once no attempt of the binding's PhoneJobs may
  still run on its worker (``unsettled``: the attempt ended, or is fenced, at the latest at its
  lease): deletion, suspension, a move and a pool's refusal all wait, saying why.
- A deleted binding with ``releasePolicy: Stop`` keeps its finalizer until Geelark confirmed the
  stop (a success reply to the stop call, or "no such phone"). Until then the tries back off
  and the binding says why (condition ``Released``, a Warning Event); a person may give up on
  purpose with the annotation ``phonefleet.dev/abandon-phone: "true"`` (see docs/safety.md).

A binding whose claim was deleted by hand and which lets its phone go before taking it again
(it is deleted, moved to another phone, queued or forbidden by its pool) holds no claim, yet may
be the last to have run the phone: it stops the phone when its status says so and a read shows
no claim on the phone at all (nobody else may be using it then). Until that stop is confirmed
its status keeps saying so: it is the only record that the phone runs for nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum, auto
from typing import Protocol

from phonefleet_operator.constants import ANNOTATION_ABANDON_PHONE
from phonefleet_operator.errors import (
    AmbiguousPhone,
    KubernetesRefused,
    KubernetesUnavailable,
    PhonefleetError,
    PhoneNotFound,
    TemporaryFault,
)
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import (
    ConditionType,
    Phase,
    PhoneBinding,
    PhoneStatus,
    condition,
)
from phonefleet_operator.render import adb_secret_name, pod_name
from phonefleet_operator.services.claims import BindingRef, ClaimService, binding_ref, holder_of
from phonefleet_operator.services.ports import Kube, PhoneDirectory, PhonePower
from phonefleet_operator.services.report import Report
from phonefleet_operator.settings import OperatorSettings

__all__ = ["LetGo", "PhoneNotStopped", "Release", "last_ran", "stops"]

log = logging.getLogger(__name__)


class PhoneNotStopped(TemporaryFault):
    """The phone of a deleted binding could not be stopped: its finalizer stays, kopf retries."""

    reason = "PhoneNotStopped"


class RemovePod(Protocol):
    """Deletes a binding's worker pod if it has one, noting ``why`` in an Event."""

    async def __call__(self, binding: PhoneBinding, report: Report, *, why: str) -> None: ...


class LetGo(Enum):
    """How a binding let a phone go (:meth:`Release.let_go`)."""

    #: The binding's worker pod is still terminating: nothing else was done, call again.
    TERMINATING = auto()
    #: The binding held the claim: the phone is stopped (unless Keep) and the claim gone.
    RELEASED = auto()
    #: Nobody held the phone and this binding last ran it: the phone is stopped.
    STOPPED_UNCLAIMED = auto()
    #: Nothing to stop: another binding holds the phone, it ran it last, or Keep.
    LEFT = auto()


def stops(binding: PhoneBinding) -> bool:
    """The binding's phone is stopped when the binding lets it go (releasePolicy Stop)."""
    return binding.spec.release_policy == "Stop"


def _stopped_for_this_spec(binding: PhoneBinding) -> bool:
    """The status says the phone is stopped, and was written by a pass of this very spec.

    "Stopped" from an older generation proves nothing: the binding may have been resumed since,
    and a pass of the resumption may have started the phone and died (SIGKILL, the API server
    gone) before it wrote its status. Suspended again, a pass that trusted that status left the
    phone running, billed, while the binding said Suspended and freed its pool slot. Only a
    spec that says ``suspend: false`` starts the phone, and any such spec after a pass of this
    one is a newer generation, so no phone start can hide behind a status of this generation.
    """
    phone = binding.status.phone
    return (
        phone is not None
        and phone.status == PhoneStatus.STOPPED
        and binding.status.observed_generation == binding.metadata.generation
    )


def last_ran(binding: PhoneBinding, phone_id: str) -> bool:
    """Whether the binding's status says it was the last to run ``phone_id``: it reported the
    phone Running or Starting (only a holder's pass does) and has not since seen another binding
    hold it (condition Claimed is True, or False only because its own claim was deleted)."""
    phone = binding.status.phone
    if phone is None or phone.id != phone_id:
        return False
    if phone.status not in (PhoneStatus.RUNNING, PhoneStatus.STARTING):
        return False
    claimed = condition(binding.status.conditions, ConditionType.CLAIMED)
    return claimed is not None and (claimed.status == "True" or claimed.reason == "ClaimDeleted")


class Release:
    """Removes what a binding no longer may have and stops phones; shared by every binding.

    ``remove_pod``, ``drop_adb_secret`` and ``forget_power`` belong to the pod, ADB and power
    steps: the suspend step removes the pod and drops the Secret the ADB step wrote, and a
    stopped phone's last "running" answer must not be reused.
    """

    def __init__(
        self,
        *,
        directory: PhoneDirectory,
        power: PhonePower,
        kube: Kube,
        claims: ClaimService,
        settings: OperatorSettings,
        remove_pod: RemovePod,
        drop_adb_secret: Callable[[PhoneBinding, Report], Awaitable[None]],
        forget_power: Callable[[str], object],
        unsettled: Callable[[str, str], str | None] = lambda namespace, name: None,
    ) -> None:
        self._unsettled = unsettled  # an attempt that may still run where the pod went
        self._directory = directory
        self._power = power
        self._kube = kube
        self._claims = claims
        self._settings = settings
        self._remove_pod = remove_pod
        self._drop_adb_secret = drop_adb_secret
        self._forget_power = forget_power

    # ------------------------------------------------------------------ within a pass

    async def suspend(self, binding: PhoneBinding, phone: Phone, report: Report) -> float:
        """The suspend step: no pod, no ADB Secret, the phone stopped, the claim kept.

        The phone is stopped only once no attempt of the binding's jobs may still run on its
        worker (it ended, or it is fenced: at the latest its lease after the worker was last
        heard): until then the binding says why it waits (Suspended, reason FencingAttempt).
        """
        s = self._settings
        await self._remove_pod(binding, report, why="the binding is suspended")
        await self._drop_adb_secret(binding, report)
        if not _stopped_for_this_spec(binding):
            fencing = self._unsettled(binding.namespace, binding.name)
            if fencing:
                return self._wait_for_fence(binding, phone, report, fencing)
            if not await self.stop_if_held(binding_ref(binding), phone.id):
                # The pass thought it held the claim (the view), the API server says otherwise:
                # the next pass reads the claim again and reports who holds it.
                report.status.message = (
                    f"Phone {phone.id} was not stopped: this binding no longer holds its claim"
                )
                return s.conflict_recheck_seconds
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
        return s.running_recheck_seconds

    def _wait_for_fence(
        self, binding: PhoneBinding, phone: Phone, report: Report, fencing: str
    ) -> float:
        """Keep a suspended binding's phone running while an attempt may still run on its
        worker, saying so; the attempt's end wakes the binding (JobService.on_fenced)."""
        message = f"Phone {phone.id} is stopped once no job runs on it: {fencing}"
        report.condition(ConditionType.PHONE_READY, "False", "FencingAttempt", message)
        report.condition(
            ConditionType.WORKER_READY, "False", "Suspended", "The binding is suspended"
        )
        report.phase(Phase.SUSPENDED, "FencingAttempt", message)
        return self._settings.pod_poll_seconds

    async def stop_if_held(self, me: BindingRef, phone_id: str) -> bool:
        """Stop the phone if a read right before the call shows ``me`` as its holder.

        Returns whether ``me`` held it (and the phone is now stopped, or gone from Geelark).
        What is left between the read and Geelark acting on the stop is in docs/safety.md.
        """
        if not await self._claims.holds(me, phone_id):
            return False
        await self._stop(phone_id, f"of {me.key}")
        return True

    async def let_go(self, binding: PhoneBinding, phone_id: str, *, stop_phone: bool) -> bool:
        """Give up ``phone_id``: no pod, no Secret, the phone stopped (if asked), the claim gone.

        Returns False while the pod is still terminating (call again); the phone is stopped only
        after its worker is gone, and only if this binding holds its claim, or last ran the phone
        and nobody holds it (its claim was deleted by hand). A stop that fails raises, and the
        claim stays.
        """
        outcome = await self._let_go(binding, phone_id, stop_phone=stop_phone)
        return outcome is not LetGo.TERMINATING

    async def _let_go(self, binding: PhoneBinding, phone_id: str, *, stop_phone: bool) -> LetGo:
        name = pod_name(binding.name)
        pod = await self._kube.get_pod(binding.namespace, name)
        if pod is not None:
            await self._kube.delete_pod(binding.namespace, name)
            return LetGo.TERMINATING
        if self._unsettled(binding.namespace, binding.name):
            return LetGo.TERMINATING  # its worker may still drive the phone: fenced first
        await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
        me = binding_ref(binding)
        held = (
            await self.stop_if_held(me, phone_id)
            if stop_phone
            else await self._claims.holds(me, phone_id)
        )
        if held:
            await self._claims.release(me, phone_id)
            return LetGo.RELEASED
        if stop_phone and last_ran(binding, phone_id) and await self._stop_unclaimed(me, phone_id):
            return LetGo.STOPPED_UNCLAIMED
        return LetGo.LEFT

    async def _stop_unclaimed(self, me: BindingRef, phone_id: str) -> bool:
        """Stop a phone ``me`` last ran, whose claim was deleted by hand and let go, if a read
        right before the call shows no claim on it: no binding may be using it then, and
        nothing else would ever stop it (the orphan sweep works from claims). Returns whether
        it stopped the phone (or found it gone from Geelark)."""
        if not await self._claims.free(phone_id):
            return False  # another binding holds it now: its phone, its call
        await self._stop(phone_id, f"({me.key} last ran it, and nobody holds it)")
        return True

    async def _stop(self, phone_id: str, whose: str) -> None:
        """Stop the phone (one gone from Geelark needs no stop) and forget that it ran;
        ``whose`` says in the log why it was this binding's to stop."""
        try:
            await self._power.stop(phone_id)
        except PhoneNotFound:
            log.info("Phone %s %s is gone from Geelark: nothing to stop", phone_id, whose)
        else:
            log.info("Stopped phone %s %s", phone_id, whose)
        self._forget_power(phone_id)

    async def gated(
        self, binding: PhoneBinding, phone_id: str, report: Report, *, held: bool
    ) -> bool:
        """The PhonePools keep the binding from ``phone_id`` now (``report`` already says
        Forbidden or Queued); let go of what it ran. False while its pod is still terminating.

        A phone the binding ``held`` (its pool revoked it) is let go as on any release. So is a
        phone the binding ran before ``spec.phoneId`` named ``phone_id``. A phone whose claim was
        deleted by hand and which the binding last ran is stopped as its releasePolicy says,
        when a read shows nobody holds it: no other pass and no sweep would stop it. Until the
        stop is done, the status keeps what it said of the phone (the gate may have cleared it):
        a failed stop is tried again at the next pass, or by the binding's deletion.
        """
        known = binding.status.phone
        previous = known.id if known else None
        if previous is None:
            return True
        moved = previous != phone_id
        if held and not moved:
            return await self.let_go(binding, previous, stop_phone=stops(binding))
        if not moved and not await self._left_running(binding, previous, report):
            return True
        try:
            outcome = await self._let_go(binding, previous, stop_phone=stops(binding))
        except PhonefleetError:
            _keep_record(binding, report)
            raise
        if outcome is LetGo.TERMINATING:
            _keep_record(binding, report)
            return False
        if outcome is LetGo.STOPPED_UNCLAIMED:
            report.event(
                "StoppedPhone",
                f"Stopped phone {previous}: its PhoneClaim was deleted by hand and this binding "
                f"does not take it again now ({report.status.phase})",
            )
        if moved:
            report.status.phone = None
        elif report.status.phone is not None:
            stopped = outcome is LetGo.STOPPED_UNCLAIMED
            report.phone(
                status=PhoneStatus.STOPPED if stopped else None,
                adb_provisioned_at=None,
                live_view_url=None,
            )
        report.status.pod_name = None
        return True

    async def _left_running(self, binding: PhoneBinding, phone_id: str, report: Report) -> bool:
        """Whether ``phone_id`` runs for nobody and is this binding's to stop: it last ran it,
        says Stop, and a read finds no claim on it (a read before the worker pod is touched)."""
        if not (stops(binding) and last_ran(binding, phone_id)):
            return False
        holder = await self._claims.holder(phone_id)
        if holder == binding.uid:
            _keep_record(binding, report)  # it holds the phone after all: judged again
            return False
        if holder is not None:  # another binding's phone now: not this one's to stop
            if report.status.phone is not None:
                report.phone(status=None, adb_provisioned_at=None, live_view_url=None)
            return False
        return True

    async def claim_deleted(self, binding: PhoneBinding, phone_id: str, report: Report) -> float:
        """The holder's side of a claim deleted by hand (its pod removal already asked for).

        The claim's finalizer goes only once a read shows the binding's worker pod gone from
        the API server (not merely terminating); until then no other binding can create a
        claim on the phone. Then the binding waits for the phone like any other.
        """
        s = self._settings
        name = pod_name(binding.name)
        report.status.conflict_with = None
        if await self._kube.get_pod(binding.namespace, name) is not None:
            message = (
                f"The PhoneClaim of phone {phone_id} was deleted: it is released once Pod "
                f"{name} is gone"
            )
            delay = s.pod_poll_seconds
        else:
            await self._claims.release(binding_ref(binding), phone_id)
            message = (
                f"The PhoneClaim of phone {phone_id} was deleted and its worker is gone: this "
                "binding takes the phone again when it is free"
            )
            delay = s.conflict_recheck_seconds  # the claim's deletion wakes it sooner
        report.condition(ConditionType.CLAIMED, "False", "ClaimDeleted", message)
        report.phase(Phase.CONFLICT, "ClaimDeleted", message)
        return delay

    # ------------------------------------------------------------------ on deletion

    async def finalize(
        self, binding: PhoneBinding, report: Report, *, abandon: bool = False
    ) -> bool:
        """Release everything a deleted binding holds; False while its pod is still terminating.

        Raises PhoneNotStopped while Geelark does not confirm the stop of a ``Stop`` binding's
        phone (after noting why in ``report``), unless ``abandon``: a person gave up on purpose.
        """
        phone_id = await self._phone_of(binding)
        if phone_id is None:
            await self._kube.delete_pod(binding.namespace, pod_name(binding.name))
            await self._kube.delete_secret(binding.namespace, adb_secret_name(binding.name))
            return True
        try:
            return await self.let_go(binding, phone_id, stop_phone=stops(binding))
        except KubernetesUnavailable:
            raise
        except KubernetesRefused as error:
            # Not a failed stop: the API server refused a write of the release (RBAC, policy).
            message = f"Phone {phone_id} could not be let go: {error}"
            report.condition(ConditionType.RELEASED, "False", error.reason, message)
            raise
        except PhonefleetError as error:
            if abandon:
                await self._abandon(binding, phone_id, error, report)
                return True
            raise self._not_stopped(binding, phone_id, error, report) from error

    async def _phone_of(self, binding: PhoneBinding) -> str | None:
        """The phone a deleted binding may hold: its recorded id, else found without guessing.

        A crash between claiming and writing the status leaves no id behind: the spec is
        resolved so that a phone this binding started is never left running; if Geelark cannot
        answer, the claims are searched for one this binding holds.
        """
        if binding.status.phone and binding.status.phone.id:
            return binding.status.phone.id
        try:
            return (await self._directory.resolve(binding.spec.phone_id)).id
        except (PhoneNotFound, AmbiguousPhone):
            return None  # never resolved, so never claimed
        except KubernetesUnavailable:
            raise
        except PhonefleetError:
            for claim in await self._kube.list_claims():
                if holder_of(claim)[2] == binding.uid:
                    return str(claim["metadata"]["name"])
            return None

    async def _abandon(
        self, binding: PhoneBinding, phone_id: str, error: PhonefleetError, report: Report
    ) -> None:
        message = (
            f"Gave up on phone {phone_id} as annotation {ANNOTATION_ABANDON_PHONE} asks: it "
            f"could not be stopped ({error.reason}) and may still be running and billed"
        )
        log.warning("Abandoned phone %s of %s: %s", phone_id, binding.namespaced_name, message)
        report.event("AbandonedPhone", message, warning=True)
        await self._claims.release(binding_ref(binding), phone_id)

    def _not_stopped(
        self,
        binding: PhoneBinding,
        phone_id: str,
        error: PhonefleetError,
        report: Report,
    ) -> PhoneNotStopped:
        message = (
            f"Phone {phone_id} could not be stopped ({error.reason}: {error}). The binding stays "
            "until Geelark confirms the stop; to give up and leave the phone running, annotate "
            f'it {ANNOTATION_ABANDON_PHONE}="true"'
        )
        delay = self._backoff(binding, report)
        report.condition(ConditionType.RELEASED, "False", error.reason, message)
        report.phase(Phase.ERROR, PhoneNotStopped.reason, message, warning=True)
        log.warning(
            "Kept the finalizer of %s: phone %s could not be stopped (%s); next try in %.0f s",
            binding.namespaced_name,
            phone_id,
            error.reason,
            delay,
        )
        return PhoneNotStopped(message, delay=delay)

    def _backoff(self, binding: PhoneBinding, report: Report) -> float:
        """Seconds until the next try: as long as the stop has failed so far, which doubles the
        wait at each try, from ``geelark_retry_seconds`` up to ``error_recheck_seconds``.

        The failures are counted from condition Released, which turned False at the first one:
        kopf's retry count also counts the waits for the pod to terminate, and the condition
        survives operator restarts.
        """
        s = self._settings
        failing = condition(binding.status.conditions, ConditionType.RELEASED)
        waited = 0.0
        if failing is not None and failing.status == "False" and failing.last_transition_time:
            since = datetime.fromisoformat(failing.last_transition_time.replace("Z", "+00:00"))
            waited = (report.now - since).total_seconds()
        return min(max(s.geelark_retry_seconds, waited), s.error_recheck_seconds)


def _keep_record(binding: PhoneBinding, report: Report) -> None:
    """Keep in the status what the binding said of its phone before this pass (the phone, and
    how its claim went): the record that it still has a phone to let go, whatever the pass
    wrote over it (a Forbidden status shows no phone)."""
    report.status.phone = binding.status.phone.model_copy() if binding.status.phone else None
    before = condition(binding.status.conditions, ConditionType.CLAIMED)
    if before is not None:
        report.status.conditions = [
            before.model_copy() if c.type == ConditionType.CLAIMED else c
            for c in report.status.conditions
        ]
