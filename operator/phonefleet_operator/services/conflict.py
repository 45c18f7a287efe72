"""The pass of a binding that does not hold its phone: another binding holds it, an older one
waits for it and goes first, or this binding's claim was deleted by hand (docs/safety.md).

It has no pod then, and a pool slot only while the phone it last ran still runs for nobody: a
claim deleted by hand leaves the phone running until this binding takes it again, and so does
an older waiter until it holds the phone (until then this binding's deletion, or its pool
queueing or forbidding it, stops the phone: services/release.py).
"""

from __future__ import annotations

from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding
from phonefleet_operator.services.claims import ClaimResult
from phonefleet_operator.services.release import Release, RemovePod, last_ran
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.tenancy import NoTenancy, Tenancy, conflict_for_reader
from phonefleet_operator.settings import OperatorSettings

__all__ = ["ConflictStep"]


class ConflictStep:
    """What a binding that does not hold its phone is told and keeps; shared by every binding."""

    def __init__(
        self,
        *,
        release: Release,
        tenancy: Tenancy | NoTenancy,
        settings: OperatorSettings,
        remove_pod: RemovePod,
    ) -> None:
        self._release = release
        self._tenancy = tenancy
        self._settings = settings
        self._remove_pod = remove_pod

    async def not_held(
        self, binding: PhoneBinding, phone: Phone, claim: ClaimResult, report: Report
    ) -> float:
        """No pod; say who holds the phone (or goes first); the seconds until the next pass."""
        await self._remove_pod(binding, report, why="the phone is not held by this binding")
        if claim.deleted:  # by hand: it goes once this binding's worker is gone
            # The slot stays: the phone still runs (billed) until this binding takes it again
            # or another binding of the pool takes it, with a slot of its own.
            return await self._release.claim_deleted(binding, phone.id, report)
        # The phone is free, an older binding goes first, and this one ran it last (its claim
        # was deleted by hand): until someone holds the phone it still runs for this binding,
        # which keeps its pool slot and the record that makes its deletion stop the phone.
        owed = claim.waiting_behind is not None and last_ran(binding, phone.id)
        if not owed:
            await self._tenancy.yield_slot(binding)  # a pool's running slot: this one runs nothing
        other = claim.holder or claim.waiting_behind
        # Another namespace's binding is never named (tenants must not learn of each other).
        shown = conflict_for_reader(binding.namespace, other) if other else None
        holder = shown or "another binding"
        report.status.conflict_with = shown
        if owed:
            report.condition(
                ConditionType.CLAIMED,
                "False",
                "ClaimDeleted",
                f"The PhoneClaim of phone {phone.id} was deleted and {holder}, waiting longer, "
                "takes the phone first",
            )
        else:
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
            "this binding takes it when that one goes (delete or suspend it to hand the phone "
            "over now, or name another phone in spec.phoneId)",
            warning=True,
        )
        return self._settings.conflict_recheck_seconds
