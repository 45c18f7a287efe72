"""Billing leaks: phones Geelark bills (running or starting) that no live binding holds or runs.

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
    "HOLDING_PHASES",
    "LeakTracker",
    "UnboundPhone",
    "held_phone_ids",
    "how_to_stop",
    "unbound_running",
]

#: Power states Geelark bills.
BILLED: Final = frozenset({PhoneStatus.RUNNING, PhoneStatus.STARTING})
#: Phases in which a binding runs its phone (it holds the claim, the phone is meant to be on).
HOLDING_PHASES: Final = frozenset({"Bound", "Running"})


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
    """Phone ids held by a live binding: claims whose holder uid is a live binding's, and the
    resolved phone of every binding in a phase that runs it."""
    live = {str((b.get("metadata") or {}).get("uid", "")) for b in bindings}
    held = {
        str(c["metadata"]["name"])
        for c in claims
        if str(((c.get("spec") or {}).get("holder") or {}).get("uid", "")) in live
    }
    for b in bindings:
        status = b.get("status") or {}
        phone_id = (status.get("phone") or {}).get("id")
        if phone_id and status.get("phase") in HOLDING_PHASES:
            held.add(str(phone_id))
    return held


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
