"""The binding's conditions the job loop owns: AccountHealthy (the account hold) and
WorkerImageCurrent (whether its worker takes attempt leases). Pure: each returns the conditions
to write, the very list it was given when nothing changed."""

from __future__ import annotations

from datetime import datetime

from phonefleet_operator.models import (
    Condition,
    ConditionStatus,
    ConditionType,
    PhoneBinding,
    condition,
    set_condition,
)
from phonefleet_operator.render import pod_name
from phonefleet_operator.services.jobs import protocol

__all__ = ["ACCOUNT_HOLD_ANNOTATION", "account_condition", "worker_image_condition"]

#: On a PhoneBinding: why its account is held; jobs wait until a person removes it.
ACCOUNT_HOLD_ANNOTATION = "phonefleet.dev/account-hold"


def account_condition(
    binding: PhoneBinding, conditions: list[Condition], hold: str | None, now: datetime
) -> list[Condition]:
    """AccountHealthy: False with the hold's words while the binding is held, True once a
    person cleared it; absent until a hold happened."""
    status: ConditionStatus = "False" if hold else "True"
    old = condition(conditions, ConditionType.ACCOUNT_HEALTHY)
    if old is None and hold is None:
        return conditions  # never held: no condition until something happens
    if old is not None and old.status == status and (hold is None or old.message == hold):
        return conditions
    return set_condition(
        conditions,
        type=ConditionType.ACCOUNT_HEALTHY,
        status=status,
        reason="AccountError" if hold else "Cleared",
        message=hold or "A person cleared the account hold.",
        now=now,
        generation=binding.metadata.generation,
    )


def worker_image_condition(
    binding: PhoneBinding,
    conditions: list[Condition],
    seen: tuple[bool, str] | None,
    now: datetime,
) -> list[Condition]:
    """WorkerImageCurrent: False (OldWorkerImage) while the worker last asked takes no lease,
    True once a worker that does answers; absent until a worker took no lease (as the
    account's condition, nothing is said until something happens). ``seen``: whether the
    worker last asked takes leases, and its pod (None: no worker asked yet)."""
    if seen is None:
        return conditions
    current = seen[0]
    old = condition(conditions, protocol.WORKER_IMAGE_CURRENT)
    if old is None and current:
        return conditions
    status: ConditionStatus = "True" if current else "False"
    pod = pod_name(binding.name)
    reason, message = (
        (protocol.CURRENT_WORKER_REASON, protocol.current_worker_message(pod))
        if current
        else (protocol.OLD_WORKER_REASON, protocol.old_worker_message(pod))
    )
    if old is not None and (old.status, old.reason, old.message) == (status, reason, message):
        return conditions
    return set_condition(
        conditions,
        type=protocol.WORKER_IMAGE_CURRENT,
        status=status,
        reason=reason,
        message=message,
        now=now,
        generation=binding.metadata.generation,
    )
