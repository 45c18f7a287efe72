"""The lock on a phone: who holds it, who waits for it, and when a claim is released.

Creating the cluster-scoped PhoneClaim named after the canonical phone id is the one atomic step
that decides who holds a phone; the API server lets exactly one create succeed. Everything else
here (the oldest-waiter rule, orphan release) only decides *when* to try, never *whether* two can
hold it. A claim records the holder's releasePolicy (kept current while the holder lives), so
that the orphan sweep, which runs when the holder is gone, still stops the phone of a ``Stop``
binding.

Claims are cluster-scoped, yet each belongs to one Geelark account (services/accounts.py): an
operator releases, and stops the phone of, only claims of its own account. A claim of another
account is only ever a "held by another" to it, whatever its holder's state.

Each claim carries the finalizer ``phonefleet.dev/worker-gone``, removed only once no worker pod
of its holder is left: a claim deleted by hand keeps the phone locked (the next holder's create
fails) until the old worker is gone from the API server, so two workers never drive one phone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from phonefleet_operator.constants import (
    CLAIM_FINALIZER,
    COMPONENT_WORKER,
    LABEL_ACCOUNT,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PHONE_ID,
    MANAGED_BY,
)
from phonefleet_operator.errors import (
    KubernetesRefused,
    PhonefleetError,
    PhoneNotFound,
    TemporaryFault,
)
from phonefleet_operator.models import PhoneBinding, rfc3339
from phonefleet_operator.render import label_value
from phonefleet_operator.services.accounts import UNLABELLED, AccountScope, account_of
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.ports import Kube, PhonePower

__all__ = [
    "BindingRef",
    "ClaimResult",
    "ClaimService",
    "binding_ref",
    "deleting",
    "holder_of",
    "release_policy_of",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class BindingRef:
    """Who a binding is, ordered oldest first (creationTimestamp, then namespace/name)."""

    created: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        """``namespace/name``, as people write it."""
        return f"{self.namespace}/{self.name}"


def binding_ref(binding: PhoneBinding) -> BindingRef:
    """The binding's identity, ordered by age for the oldest-waiter rule."""
    created = binding.metadata.creation_timestamp
    return BindingRef(
        created=rfc3339(created) if created else "",  # the API server's own format, as in the index
        namespace=binding.namespace,
        name=binding.name,
        uid=binding.uid,
    )


@dataclass(frozen=True)
class ClaimResult:
    """The outcome of one attempt: held, or held by someone else (``holder``).

    ``deleted``: this binding's claim was deleted by hand; the binding removes its pod, then
    lets the claim go (:meth:`ClaimService.release`) and waits for the phone like any other.
    """

    held: bool
    holder: str | None = None
    created: bool = False
    waiting_behind: str | None = None
    deleted: bool = False


def holder_of(claim: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, name, uid) of the binding a claim records as its holder."""
    holder = claim.get("spec", {}).get("holder", {})
    return holder.get("namespace", ""), holder.get("name", ""), holder.get("uid", "")


def deleting(claim: Mapping[str, Any]) -> bool:
    """The claim was deleted and waits for its finalizers: nobody may use it any more."""
    return bool(claim.get("metadata", {}).get("deletionTimestamp"))


def release_policy_of(claim: Mapping[str, Any]) -> str:
    """The releasePolicy a claim records (``Stop`` for claims made before it was recorded)."""
    return str(claim.get("spec", {}).get("releasePolicy") or "Stop")


class ClaimService:
    """Acquires and releases PhoneClaims for bindings."""

    def __init__(
        self,
        kube: Kube,
        observed: ObservedClaims | None = None,
        *,
        power: PhonePower | None = None,
        known_alive: Callable[[str], bool] = lambda uid: False,
        scope: AccountScope | None = None,
        unsettled: Callable[[str, str, str], str | None] = lambda namespace, name, uid: None,
    ) -> None:
        self._kube = kube
        # Why an orphan's phone must wait (an attempt of its holder's jobs is not fenced yet).
        self._unsettled = unsettled
        # The claims this operator may release: its account's (one operator per account).
        self._scope = scope if scope is not None else AccountScope()
        self._observed = observed if observed is not None else ObservedClaims()
        # Stops the phones of orphaned claims whose policy is Stop (without it they are kept).
        self._power = power
        # Whether a binding uid is one whose loop runs here (so it exists): the orphan sweep
        # then reads no binding for its claim (a fleet at rest reads none).
        self._known_alive = known_alive

    async def acquire(
        self,
        me: BindingRef,
        phone_id: str,
        claim_manifest: dict[str, Any],
        waiters: Iterable[BindingRef],
        *,
        trust_view: bool = True,
    ) -> ClaimResult:
        """Hold the phone if it is free and no older binding waits for it; else say who has it.

        A claim the watch shows held by ``me`` needs no read: only ``me`` deletes it on purpose,
        and a deletion by hand arrives as an event that wakes ``me`` to look again. With
        ``trust_view`` False the claim is read in any case (and the view corrected).

        "Not held" is only ever answered from what the API server said: a create that failed
        and a read that names another holder, or a read that shows the phone free while an
        older binding waits. An empty view (right after a restart, before the claims watch has
        listed) is never taken for "free": the caller removes its pod on a "not held".
        """
        older = sorted(w for w in waiters if w < me and w.uid != me.uid)
        seen = self._observed.holder_uid(phone_id)
        policy = release_policy_of(claim_manifest)
        if trust_view and seen == me.uid:
            if self._observed.release_policy(phone_id) != policy:
                await self._record_policy(me, phone_id, policy)
            return ClaimResult(held=True)
        if trust_view and seen is None and not older and await self._create(me, claim_manifest):
            # No claim seen and nobody older waits: the create is the check (it fails if a
            # claim exists after all, and then the claim is read below).
            return ClaimResult(held=True, created=True)
        found = await self._read(me, phone_id, policy)
        if found is not None:
            return found
        if older:
            # The phone is free (the read says so): the oldest waiter takes it first.
            return ClaimResult(held=False, waiting_behind=older[0].key)
        if await self._create(me, claim_manifest):
            return ClaimResult(held=True, created=True)
        return await self._winner(me, phone_id)

    async def _read(self, me: BindingRef, phone_id: str, policy: str) -> ClaimResult | None:
        """Who holds the phone, as the API server says; None when it is free (an orphaned
        claim of this account, whose holder no longer exists, is released: taking over keeps
        the phone on). ``policy``: the releasePolicy a claim of ``me`` should record."""
        claim = await self._get(phone_id)
        if claim is None:
            return None
        namespace, name, uid = holder_of(claim)
        if uid == me.uid:
            if not deleting(claim) and release_policy_of(claim) != policy:
                await self._patch_policy(me, claim, policy)
            return ClaimResult(held=not deleting(claim), deleted=deleting(claim))
        if not self._scope.owns(claim):
            # Another account's claim on a phone of the same id: never ours to release, and
            # its operator alone knows whether the phone must be stopped (docs/accounts.md).
            return ClaimResult(held=False, holder=f"{namespace}/{name}")
        if await self._holder_alive(namespace, name, uid):
            return ClaimResult(held=False, holder=f"{namespace}/{name}")
        if not await self._release_orphan(phone_id, claim):
            # Its holder's worker is still terminating (or the claim changed): not free yet.
            return ClaimResult(held=False, holder=f"{namespace}/{name}")
        return None

    async def _get(self, phone_id: str) -> dict[str, Any] | None:
        """The claim on ``phone_id`` as the API server has it now (None: no claim); what it
        reads also corrects the view, which a missed watch event may have left behind."""
        claim = await self._kube.get_claim(phone_id)
        self._observed.refresh(phone_id, claim)
        return claim

    async def _create(self, me: BindingRef, claim_manifest: dict[str, Any]) -> bool:
        """Create the claim; False when one exists (another binding got there first)."""
        if not await self._kube.create_claim(claim_manifest):
            return False
        self._observed.saw(claim_manifest)
        log.info("Created PhoneClaim %s for %s", claim_manifest["metadata"]["name"], me.key)
        return True

    async def _record_policy(self, me: BindingRef, phone_id: str, policy: str) -> None:
        """The view says the claim of ``me`` records another releasePolicy than the binding's
        (it changed since the claim was made): read the claim and write the binding's."""
        claim = await self._get(phone_id)
        if claim is None or holder_of(claim)[2] != me.uid or deleting(claim):
            return  # not ours (any more): the pass learns so from the view it just corrected
        if release_policy_of(claim) != policy:
            await self._patch_policy(me, claim, policy)

    async def _patch_policy(self, me: BindingRef, claim: Mapping[str, Any], policy: str) -> None:
        """Make the claim record the binding's current releasePolicy, which the orphan sweep
        applies if the binding vanishes without its own release (a Keep binding's phone must
        not be stopped then, nor a Stop binding's left running). A write that lost a race is
        retried by the next pass (the view still differs)."""
        phone_id = claim["metadata"]["name"]
        if account_of(claim) is None:
            await self._adopt(claim)  # alone, as the account policy wants; the next pass writes
            return
        try:
            written = await self._kube.patch_claim(claim, {"spec": {"releasePolicy": policy}})
        except KubernetesRefused as error:
            # The binding still holds its phone: a refused record of its policy is no reason to
            # fail the pass (and with it the power checks). Retrying costs one request a pass.
            log.warning(
                "Could not update the releasePolicy of PhoneClaim %s to %s for %s: the API "
                "server refused (%s). Apply this version's CRDs and manifests/rbac; until then "
                "the orphan sweep would apply the claim's %s, and every pass tries again",
                phone_id,
                policy,
                me.key,
                error,
                release_policy_of(claim),
            )
            return
        if written:
            self._observed.saw({**claim, "spec": {**claim["spec"], "releasePolicy": policy}})
            log.info(
                "Updated PhoneClaim %s: releasePolicy %s, as %s says", phone_id, policy, me.key
            )
        else:
            log.info(
                "Did not update the releasePolicy of PhoneClaim %s: it changed meanwhile; the "
                "next pass tries again",
                phone_id,
            )

    async def _winner(self, me: BindingRef, phone_id: str) -> ClaimResult:
        """Who holds the phone after our create lost the race to another binding's."""
        claim = await self._get(phone_id)
        if claim is None:
            # Gone again before we could read it: nobody is known to hold it, so nothing of
            # ours is given up on this answer; the next pass tries again.
            raise TemporaryFault(f"The claim on phone {phone_id} changed while taking it", delay=1)
        namespace, name, uid = holder_of(claim)
        if uid == me.uid:
            return ClaimResult(held=not deleting(claim), deleted=deleting(claim))
        return ClaimResult(held=False, holder=f"{namespace}/{name}")

    async def holds(self, me: BindingRef, phone_id: str) -> bool:
        """Whether ``me`` holds the claim on ``phone_id`` right now: a read, never the view.

        A claim of ``me`` deleted by hand still counts: its finalizer keeps every other binding
        off the phone until ``me`` lets it go. What it reads also corrects the view, so that a
        pass after a claim was lost behind the watch's back sees the loss without waiting for
        the event.
        """
        claim = await self._get(phone_id)
        return claim is not None and holder_of(claim)[2] == me.uid

    async def confirm(self, me: BindingRef, phone_id: str) -> None:
        """Read the claim on ``phone_id`` when the view does not show ``me`` holding it, so
        that what is judged from the view next (the pools' gate) is what the API server says.

        For a binding whose status says it runs the phone: right after a restart the view is
        empty until the claims watch has listed, and a holder must not be judged as holding
        nothing (it would be forbidden and its phone forgotten). A holder the view shows costs
        no read.
        """
        if self._observed.holder_uid(phone_id) != me.uid:
            await self.holds(me, phone_id)

    async def holder(self, phone_id: str) -> str | None:
        """The uid of the binding a claim on ``phone_id`` names right now (one of another
        account, or one being deleted, included), None when there is no claim: a read."""
        claim = await self._get(phone_id)
        return holder_of(claim)[2] if claim is not None else None

    async def free(self, phone_id: str) -> bool:
        """Whether no claim at all is on ``phone_id`` right now, of any holder or account (one
        being deleted counts as a claim): a read, never the view."""
        claim = await self._get(phone_id)
        return claim is None

    async def release(self, me: BindingRef, phone_id: str) -> bool:
        """Delete the claim if ``me`` holds it, finalizer included; True when a claim of ours
        was let go.

        Only for callers that have seen the API server report ``me``'s worker pod gone: the
        finalizer is what keeps the next holder waiting for that.
        """
        claim = await self._kube.get_claim(phone_id)
        if claim is None or holder_of(claim)[2] != me.uid:
            return False
        if not await self._let_go(phone_id, claim):
            return False
        log.info("Deleted PhoneClaim %s of %s", phone_id, me.key)
        return True

    async def _let_go(self, phone_id: str, claim: Mapping[str, Any]) -> bool:
        """Remove our finalizer (as of the claim's resourceVersion), then delete the claim if
        nobody has yet, and drop it from the view; False when the claim changed or went
        meanwhile."""
        if account_of(claim) is None:
            # The account policy lets an operator release a claim only as the claim's account:
            # an unlabelled one (an older version's) is labelled first, then read again.
            labelled = await self._get(phone_id) if await self._adopt(claim) else None
            if labelled is None:
                return False
            claim = labelled
        finalizers = claim["metadata"].get("finalizers") or ()
        if CLAIM_FINALIZER in finalizers and not await self._kube.drop_claim_finalizer(claim):
            return False
        # Deleted by hand: without the finalizer it is gone now.
        if not deleting(claim) and not await self._kube.delete_claim(
            phone_id, claim["metadata"]["uid"]
        ):
            return False
        self._observed.gone(phone_id)
        return True

    async def _worker_left(self, phone_id: str) -> bool:
        """Whether any worker pod of ``phone_id`` still exists (terminating ones count: their
        worker may still drive the phone), in any namespace: a read, never the view."""
        selector = ",".join(
            (
                f"{LABEL_MANAGED_BY}={MANAGED_BY}",
                f"{LABEL_COMPONENT}={COMPONENT_WORKER}",
                f"{LABEL_PHONE_ID}={label_value(phone_id)}",
            )
        )
        pods = await self._kube.list_pods(selector)
        if pods:
            log.info(
                "Kept PhoneClaim %s: worker Pod %s/%s of the phone is not gone yet",
                phone_id,
                pods[0]["metadata"].get("namespace"),
                pods[0]["metadata"].get("name"),
            )
        return bool(pods)

    async def release_orphans(self) -> list[str]:
        """Release every claim of this account whose holder no longer exists, as its
        releasePolicy says.

        With ``Stop`` (the default, and what a claim without a recorded policy gets) the phone is
        stopped first and the claim deleted only once Geelark confirmed the stop: a claim that
        cannot be released that way stays, and the next sweep tries again. Returns the phone ids
        whose claims were deleted. A claim whose holder's loop runs in this operator is not
        checked with a read: the binding exists. Claims of other accounts are not listed; an
        unlabelled claim (made before claims named their account) this operator owns gets its
        label once its holder is known to be alive.
        """
        released = []
        for claim in await self._own_claims():
            namespace, name, uid = holder_of(claim)
            if (uid and self._known_alive(uid)) or await self._holder_alive(namespace, name, uid):
                if account_of(claim) is None:
                    await self._adopt(claim)
                continue
            phone_id = claim["metadata"]["name"]
            try:
                deleted = await self._sweep(phone_id, claim)
            except PhonefleetError as error:
                why = (
                    "the API server refused to let it go"
                    if isinstance(error, KubernetesRefused)
                    else "could not stop the phone"
                )
                log.warning(
                    "Kept PhoneClaim %s of %s/%s, whose holder no longer exists: %s (%s)",
                    phone_id,
                    namespace,
                    name,
                    why,
                    error,
                )
                continue
            if deleted:
                released.append(phone_id)
        return released

    async def _own_claims(self) -> list[dict[str, Any]]:
        """The claims of this account, and the unlabelled ones it owns (services/accounts.py)."""
        labelled = await self._kube.list_claims(self._scope.selector)
        unlabelled = await self._kube.list_claims(UNLABELLED)
        return labelled + [claim for claim in unlabelled if self._scope.owns(claim)]

    async def _adopt(self, claim: Mapping[str, Any]) -> bool:
        """Label an unlabelled claim of ours with our account: the claims watch, which selects
        by that label, then reports it. Nothing else changes; a lost race waits for the next
        sweep. True when labelled."""
        changes = {"metadata": {"labels": {LABEL_ACCOUNT: self._scope.account}}}
        try:
            labelled = await self._kube.patch_claim(claim, changes)
        except KubernetesRefused as error:
            # Only the label is missing: its holder lives, and the sweep goes on with the
            # other claims (an orphan among them must still be released).
            log.warning(
                "Could not label PhoneClaim %s with account %s: the API server refused (%s). "
                "Apply this version's manifests/rbac; the next sweep tries again",
                claim["metadata"]["name"],
                self._scope.account,
                error,
            )
            return False
        if labelled:
            log.info(
                "Labelled PhoneClaim %s with account %s (it was made by an older version)",
                claim["metadata"]["name"],
                self._scope.account,
            )
        return bool(labelled)

    async def _sweep(self, phone_id: str, claim: Mapping[str, Any]) -> bool:
        """Apply the orphan's releasePolicy, then delete it; True when it was deleted.

        Nothing happens while a worker pod of the phone is left (a force-deleted binding's pod
        goes by garbage collection, after the binding): the next sweep looks again.
        """
        if self._fencing(claim) or await self._worker_left(phone_id):
            return False
        if release_policy_of(claim) == "Stop":
            if self._power is None:
                raise PhonefleetError("no Geelark client to stop phones with")
            # A read right before the stop: the orphan is still the claim on the phone, so no
            # other binding can hold it (a claim exists per phone at most once).
            current = await self._kube.get_claim(phone_id)
            if current is None or current["metadata"].get("uid") != claim["metadata"]["uid"]:
                return False  # released or taken since the listing: not ours to stop
            try:
                await self._power.stop(phone_id)
            except PhoneNotFound:
                log.info("Phone %s of an orphaned PhoneClaim is gone from Geelark", phone_id)
            else:
                log.info("Stopped phone %s of an orphaned PhoneClaim", phone_id)
        return await self._drop_orphan(phone_id, claim)

    async def _holder_alive(self, namespace: str, name: str, uid: str) -> bool:
        binding = await self._kube.get_binding(namespace, name) if namespace and name else None
        return binding is not None and binding["metadata"].get("uid") == uid

    async def _release_orphan(self, phone_id: str, claim: Mapping[str, Any]) -> bool:
        """Delete an orphan once no worker pod of its phone is left; True when it went."""
        if self._fencing(claim) or await self._worker_left(phone_id):
            return False
        return await self._drop_orphan(phone_id, claim)

    def _fencing(self, claim: Mapping[str, Any]) -> bool:
        """Whether an attempt of the orphan's holder's jobs may still run on its worker: its
        phone is neither stopped nor handed on until that attempt is fenced (docs/jobs.md)."""
        namespace, name, uid = holder_of(claim)
        # By the holder's uid: a binding created again under its name runs jobs of its own.
        why = self._unsettled(namespace, name, uid) if namespace and name else None
        if why:
            log.info(
                "Kept PhoneClaim %s of %s/%s: %s", claim["metadata"]["name"], namespace, name, why
            )
        return bool(why)

    async def _drop_orphan(self, phone_id: str, claim: Mapping[str, Any]) -> bool:
        namespace, name, _ = holder_of(claim)
        if not await self._let_go(phone_id, claim):
            return False
        log.warning(
            "Released PhoneClaim %s: its holder %s/%s no longer exists",
            phone_id,
            namespace,
            name,
        )
        return True
