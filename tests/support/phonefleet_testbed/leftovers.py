"""The temp folders of test bed runs (a control plane's, the demo's stand-in workers'), and the
removal of those whose run died.

A run ended with SIGKILL cannot remove its folder (its child processes die with it: each has a
parent-death signal), so every run writes its process id and that process's start time into its
folder, and the next run that makes a folder of the same kind removes those whose owner is gone.
The start time tells a live owner from a new process that got the same pid. A folder without the
file (an older test bed's, or one being made this instant) or of another user is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["OWNER_FILE", "make_run_folder", "remove_dead_runs"]

OWNER_FILE: Final = ".phonefleet-owner"


def make_run_folder(prefix: str) -> Path:
    """A new folder ``<tempdir>/<prefix>XXXX`` owned by this process, made after removing the
    folders of ``prefix`` whose owner process is gone."""
    remove_dead_runs(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    written = folder / f"{OWNER_FILE}.tmp"
    written.write_text(f"{os.getpid()} {_started(os.getpid())}\n")
    written.replace(folder / OWNER_FILE)  # whole or absent: a half-written pid is never read
    return folder


def remove_dead_runs(prefix: str) -> list[Path]:
    """Remove this user's ``<tempdir>/<prefix>*`` folders whose recorded owner is gone; return
    them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if folder.is_symlink() or folder.lstat().st_uid != os.getuid():
                continue
            pid, _, started = (folder / OWNER_FILE).read_text().strip().partition(" ")
            owner = int(pid)
        except (OSError, ValueError):  # not a folder, no owner recorded, unreadable
            continue
        if _started(owner) == started:
            continue  # its run is alive
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None
    when there is no such process."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name start at 3
    return None
