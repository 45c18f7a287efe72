"""The one exit-code contract of every ``phonefleet`` command, as grep and diff have it.

Scripts, cron jobs and CI read the code, so every command means the same by each: 0 the command
did what was asked and found nothing wrong; 1 it ran and its answer is "no" (problems found,
something refused on purpose, an item that failed: each one named); 2 it could not decide (a
usage or settings error, or the cluster, Geelark or the local test bed could not be reached or
read). click exits 2 on usage errors by itself. Each command's ``--help`` has an ``Exit codes:``
paragraph in these words (``0 done:``, ``1 problems:``, ``2 error:``), which a test checks.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONTRACT", "DONE", "ERROR", "LABELS", "PROBLEMS"]

DONE: Final = 0
PROBLEMS: Final = 1
ERROR: Final = 2

#: The word that follows each code in every command's ``Exit codes:`` paragraph.
LABELS: Final = {DONE: "done", PROBLEMS: "problems", ERROR: "error"}

CONTRACT: Final = (
    "Exit codes: 0 done: what was asked is done and nothing wrong was found; 1 problems: the "
    "command ran and found problems, refused something on purpose, or an item failed (each is "
    "named); 2 error: a usage or settings error, or the cluster, Geelark or the local test bed "
    "could not be reached or read, so it could not decide (running it again once that is fixed "
    "is safe). Every command uses them so (as grep and diff do); its --help says what each "
    "means for it."
)
