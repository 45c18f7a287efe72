"""Billing leaks: phones Geelark bills (running or starting) that no live binding runs.

A phone is run by a live binding in a phase that runs it (Bound, Running) which claims it or
names it in its status. Any other billed phone is a leak: nobody's, a deleted binding's, or held
by a binding that does not run it (Suspended while an attempt is fenced, or started behind the
operator's back; an Error): the report names that binding and its phase.

Geelark bills every running minute and does not say since when a phone runs, so "how long" is
how long *we* have seen it running unbound: a lower bound, kept by whoever asks repeatedly (the
operator in memory, the CLI in a small state file).

Nothing here stops a phone: a phone running unbound may belong to someone else on the account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from phonefleet_operator.geelark import Phone, PhoneStatus

__all__ = [
    "BILLED",
    "CLAIMING_PHASES",
    "HOLDING_PHASES",
    "LeakTracker",
    "UnboundPhone",
    "held_phone_ids",
    "holders",
    "how_to_stop",
    "unbound_running",
]

#: Power states Geelark bills.
BILLED: Final = frozenset({PhoneStatus.RUNNING, PhoneStatus.STARTING})
#: Phases in which a binding runs its phone (it holds the claim, the phone is meant to be on).
HOLDING_PHASES: Final = frozenset({"Bound", "Running"})
#: Phases of a binding whose claim runs its phone: those, and a binding still setting up (no
#: phase yet, Pending). Suspended, Error and the rest keep a claim with the phone meant off.
CLAIMING_PHASES: Final = HOLDING_PHASES | {None, "", "Pending"}


@dataclass(frozen=True)
class UnboundPhone:
    """A phone billed with no binding, and for how long it has been seen so."""

    phone: Phone
    seen_for_seconds: float


def unbound_running(phones: Iterable[Phone], held: Iterable[str]) -> list[Phone]:
    """The billed phones whose id is not in ``held``, sorted by serial name then id."""
    taken = set(held)
    return sorted(
        (p for p in phones if p.status in BILLED and p.id not in taken),
        key=lambda p: (p.serial_name, p.id),
    )


def held_phone_ids(
    bindings: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]]
) -> set[str]:
    """Phone ids a live binding runs: claimed by a binding in a phase that runs its phone, or
    that is still setting it up (no phase yet, Pending: its claim comes before its status), or
    named in the status of one that runs it. A binding in another phase (Suspended, Error)
    holds its claim without running the phone: a phone billed then is reported."""
    running = {
        str((b.get("metadata") or {}).get("uid", ""))
        for b in bindings
        if (b.get("status") or {}).get("phase") in CLAIMING_PHASES
    }
    held = {
        str(c["metadata"]["name"])
        for c in claims
        if str(((c.get("spec") or {}).get("holder") or {}).get("uid", "")) in running
    }
    for b in bindings:
        status = b.get("status") or {}
        phone_id = (status.get("phone") or {}).get("id")
        if phone_id and status.get("phase") in HOLDING_PHASES:
            held.add(str(phone_id))
    return held


def holders(
    bindings: Iterable[Mapping[str, Any]], claims: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Per phone id a live binding claims: ``namespace/name (Phase)``, the phase with the Ready
    condition's reason when it has one (``Suspended: FencingAttempt``)."""
    by_uid = {str((b.get("metadata") or {}).get("uid", "")): b for b in bindings}
    found: dict[str, str] = {}
    for c in claims:
        uid = str(((c.get("spec") or {}).get("holder") or {}).get("uid", ""))
        holder = by_uid.get(uid)
        if holder is not None:
            found[str(c["metadata"]["name"])] = _described(holder)
    return found


def _described(binding: Mapping[str, Any]) -> str:
    metadata, status = binding.get("metadata") or {}, binding.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    conditions: list[Mapping[str, Any]] = status.get("conditions") or []
    ready: Mapping[str, Any] = next((x for x in conditions if x.get("type") == "Ready"), {})
    reason = ready.get("reason") if ready.get("status") != "True" else None
    why = f"{phase}: {reason}" if reason and reason != phase else phase
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')} ({why})"


class LeakTracker:
    """Remembers since when each phone has been seen running unbound, across checks."""

    def __init__(self, first_seen: Mapping[str, float] | None = None) -> None:
        self.first_seen: dict[str, float] = dict(first_seen or {})

    def update(self, leaking: Iterable[Phone], now: float) -> list[UnboundPhone]:
        """Record one check at ``now``; phones no longer leaking are forgotten."""
        found = list(leaking)
        self.first_seen = {p.id: self.first_seen.get(p.id, now) for p in found}
        return [UnboundPhone(p, max(0.0, now - self.first_seen[p.id])) for p in found]


def how_to_stop(ids: Iterable[str]) -> str:
    """The sentence a report ends with: how a person stops these phones (we never do)."""
    listed = " ".join(ids)
    return (
        "phonefleet never stops these itself (they may belong to someone else on the account). "
        f"If they are yours, stop them: phonefleet phones stop {listed}  "
        "(or in the Geelark console), or bind them with a PhoneBinding."
    )
