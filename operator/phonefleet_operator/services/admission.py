"""Admission decisions: specs the CRD schema cannot judge, and phones already held by another.

The webhook gives GitOps pipelines an early, clear "no"; it is never the guarantee. The claim's
create is: with the webhook down (failurePolicy Ignore), duplicates are admitted and still never
both hold a phone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.models import PhoneBindingSpec
from phonefleet_operator.services.claims import holder_of
from phonefleet_operator.services.ports import Kube, PhoneDirectory
from phonefleet_operator.services.tenancy import NoTenancy, Tenancy, holder_for_reader
from phonefleet_operator.waiting import within

__all__ = ["AdmissionService", "spec_problems"]

log = logging.getLogger(__name__)

# Flags and variables the operator sets on the worker: a binding must not override them, or its
# worker would be started for another phone than the one the binding holds (invariant 3).
_RESERVED_ARGS = ("--phone-id", "--adb-secret-dir")
_RESERVED_ENV = ("PHONEFLEET_WORKER_PHONE_ID", "PHONEFLEET_WORKER_ADB_SECRET_DIR")


def spec_problems(spec: PhoneBindingSpec) -> list[str]:
    """What is wrong with a spec beyond what the CRD schema checks; empty when nothing is."""
    problems = []
    for arg in spec.worker.args:
        flag = arg.split("=", 1)[0]
        if flag in _RESERVED_ARGS:
            problems.append(
                f"spec.worker.args must not set {flag}: the operator sets it from the claimed phone"
            )
    problems += [
        f"spec.worker.env must not set {env.name}: the operator sets it from the claimed phone"
        for env in spec.worker.env
        if env.name in _RESERVED_ENV
    ]
    return problems


class AdmissionService:
    """Reviews a PhoneBinding before the API server stores it."""

    def __init__(
        self,
        directory: PhoneDirectory,
        kube: Kube,
        *,
        timeout: float = 5.0,
        tenancy: Tenancy | NoTenancy | None = None,
    ) -> None:
        self._tenancy = tenancy or NoTenancy()
        self._directory = directory
        self._kube = kube
        self._timeout = timeout

    async def review(self, namespace: str, name: str, spec: Mapping[str, Any]) -> list[str]:
        """Reasons to refuse the binding ``namespace/name``; empty to admit it."""
        try:
            parsed = PhoneBindingSpec.model_validate(dict(spec))
        except ValidationError as error:
            return [f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        problems = spec_problems(parsed)
        holder = await self._holder(parsed.phone_id)
        holds = holder is not None and holder[:2] == (namespace, name)
        # PhonePools (docs/tenancy.md); a binding that holds its phone may still be suspended.
        refusal = await self._tenancy.refusal(namespace, parsed, holds=holds)
        if refusal is not None:
            return [*problems, refusal]
        if holder is not None and not holds:
            phone_id, serial = holder[2], holder[3]
            shown = holder_for_reader(namespace, f"{holder[0]}/{holder[1]}")
            problems.append(
                f"phone {phone_id} ({serial}) is already held by {shown} "
                f"(PhoneClaim {phone_id}); delete or suspend that binding first"
            )
        return problems

    async def _holder(self, reference: str) -> tuple[str, str, str, str] | None:
        """(namespace, name, phone id, serialName) of the live binding holding the phone, if any.

        Anything that cannot be checked quickly (Geelark down, phone unknown) admits the binding:
        the operator reports it in the status, and the claim still decides.
        """
        try:
            phone = await within(self._directory.resolve(reference), self._timeout)
            claim = await self._kube.get_claim(phone.id)
            if claim is None:
                return None
            namespace, name, uid = holder_of(claim)
            live = await self._kube.get_binding(namespace, name)
        except (PhonefleetError, TimeoutError) as error:
            log.info("Admitted a binding for %s unchecked: %s", reference, error)
            return None
        if live is None or live["metadata"].get("uid") != uid:
            return None
        return namespace, name, phone.id, phone.serial_name
