"""The resolve step of a pass: the phone a binding's spec names, and a binding whose phone is gone.

``spec.phoneId`` is a phone id or a serialName; the Geelark inventory (``PhoneDirectory``) turns
it into one phone, or says PhoneNotFound / AmbiguousPhone. A phone the binding is bound to stays
bound by the id in its status, so renaming the phone in Geelark does not move the binding. When
Geelark has no such phone, the binding lets go of the phone it ran (if any) and says
PhoneNotFound; under PhonePools it is told ``PhoneNotAvailable`` instead, the very words of a
phone it may not use, so that a namespace does not learn which phones exist (docs/tenancy.md).
"""

from __future__ import annotations

from phonefleet_operator.errors import PhoneNotFound
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import ConditionType, Phase, PhoneBinding
from phonefleet_operator.services.ports import PhoneDirectory
from phonefleet_operator.services.release import Release, stops
from phonefleet_operator.services.report import Report
from phonefleet_operator.services.tenancy import NoTenancy, Tenancy

__all__ = ["ResolveStep"]


class ResolveStep:
    """Finds each binding's phone; shared by every binding of the operator (keeps no state)."""

    def __init__(
        self, directory: PhoneDirectory, release: Release, tenancy: Tenancy | NoTenancy
    ) -> None:
        self._directory = directory
        self._release = release
        self._tenancy = tenancy

    async def phone(self, binding: PhoneBinding, report: Report) -> Phone | None:
        """The phone the spec names; None when there is none (the report says so) or the phone
        the binding ran is still being let go (its status is kept: the pass comes back)."""
        known = binding.status.phone
        if known and known.id and known.reference == binding.spec.phone_id:
            return Phone(id=known.id, serial_name=known.serial_name or "")
        try:
            return await self._directory.resolve(binding.spec.phone_id)
        except PhoneNotFound as error:
            previous = known.id if known else None
            if previous and not await self._release.let_go(
                binding, previous, stop_phone=stops(binding)
            ):
                return None  # the old pod is terminating: keep status.phone and come back
            report.status.phone = None
            report.status.pod_name = None
            report.geelark_answered()
            if await self._tenancy.conceals_missing(binding, report):  # told as "not yours"
                return None
            said = (
                f"{error}: create it in Geelark or correct spec.phoneId (checked again by itself)"
            )
            report.condition(ConditionType.CLAIMED, "False", "PhoneNotFound", said)
            report.phase(Phase.PHONE_NOT_FOUND, "PhoneNotFound", said, warning=True)
            return None
