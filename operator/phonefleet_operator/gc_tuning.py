"""The cyclic garbage collector, set for a process that keeps a few hundred objects per binding.

CPython's defaults (a young collection every 700 net allocations, the oldest generation scanned
whole whenever it grew by a quarter) suit small scripts. The operator allocates thousands of
short-lived objects per reconcile pass (parsed bodies, models, patches) and keeps its modules
(kopf, the Kubernetes client's thousand model classes, pydantic) and per-binding state for
its lifetime: a young collection every few hundred allocations promotes whatever a pass in
flight still holds, and every full collection walks the whole heap again. Measured at N = 5,000
(make bench, docs/scale.md round 4), 34 full collections of 0.8 s each and 7,900 smaller ones
took 48 s of wall time in a run that used 86 CPU s; tuned, 3 CPU s of 69.

``tune_gc`` runs once, after start-up imported everything: what exists then is frozen (never
scanned again: it lives as long as the process), and young collections come every 50,000 net
allocations, when a pass's temporaries are mostly gone already. Reference cycles are still
collected; the heap holds at most one young generation more of them.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["THRESHOLDS", "tune_gc"]

#: Net allocations before a young collection; young collections before a middle one; middle
#: ones before a full one (the full one still waits until the old generation grew by a quarter).
THRESHOLDS: Final = (50_000, 20, 10)


def tune_gc() -> None:
    """Freeze what start-up built and collect less often (see the module's docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
