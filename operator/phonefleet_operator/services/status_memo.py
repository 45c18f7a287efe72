"""The statuses this operator wrote, per binding, so a pass on a stale body does not redo steps.

kopf hands the loop the body of the last watch event it has processed; under load (a thousand
bindings patching their status) that can be the body from before our last status patch. A pass
working from it would redo the last steps: fetch the ADB data again, rewrite the Secret, post the
same Events once more. Our last write succeeded (a failed one is forgotten), so the next patch is
computed against it: a stale body does not make the pass send the same status again.

The memo keeps each status as the dict ``to_dict`` made for it alone, and the last one written
also as a shallow copy of the model (its phone and conditions are frozen): nothing a later pass
changes reaches what is remembered.
"""

from __future__ import annotations

from typing import Any

from phonefleet_operator.models import PhoneBinding, PhoneBindingStatus
from phonefleet_operator.services.report import Report

__all__ = ["WrittenStatuses"]

# Statuses remembered as replaced by our own writes, per binding (see caught_up).
_SUPERSEDED_KEPT = 3


class WrittenStatuses:
    """Per binding uid: the statuses our later writes replaced, and the status last written."""

    def __init__(self) -> None:
        self._written: dict[
            str, tuple[list[dict[str, Any]], PhoneBindingStatus, dict[str, Any]]
        ] = {}

    def caught_up(
        self, binding: PhoneBinding, body_status: dict[str, Any], report: Report
    ) -> PhoneBinding:
        """The binding with the status this operator last wrote, if the body still predates it."""
        memo = self._written.get(binding.uid)
        if memo is None:
            return binding
        superseded, latest, _ = memo
        if body_status not in superseded:
            del self._written[binding.uid]  # the body has caught up (or moved on without us)
            return binding
        report.base = latest
        report.status = latest.model_copy()  # shallow: see Report.__post_init__
        report.status.observed_generation = binding.metadata.generation
        return binding.model_copy(update={"status": latest})

    def remember(self, uid: str, body_status: dict[str, Any], report: Report) -> None:
        """Note the status this pass writes, and which statuses it supersedes."""
        written = report.status.to_dict()
        if written == body_status:
            self._written.pop(uid, None)
            return
        superseded, _, latest = self._written.get(uid, ([], None, None))
        older = [*superseded, body_status]
        if latest is not None and latest != written:
            older.append(latest)
        self._written[uid] = (older[-_SUPERSEDED_KEPT:], report.status.model_copy(), written)

    def forget(self, uid: str) -> None:
        """The last status of ``uid`` was not written, or the binding is gone."""
        self._written.pop(uid, None)

    def __len__(self) -> int:
        return len(self._written)
