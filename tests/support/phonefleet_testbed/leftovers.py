"""The temp folders of test bed runs (a control plane's, the demo's stand-in workers'), and the
removal of those whose run died.

A run ended with SIGKILL cannot remove its folder (its child processes die with it: each has a
parent-death signal), so every run writes its process id and that process's start time into its
folder, and the next run that makes a folder of the same kind removes those whose owner is gone.
The start time tells a live owner from a new process that got the same pid. A folder of another
user is never touched. A folder without the file is an older test bed's (before the owner record)
or one being made this instant: it is removed only once it is more than an hour old and no live
process names it on its command line (a control plane's etcd and kube-apiserver do, with their
data directories) or works in it; younger, or in use, it stays.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["OWNERLESS_AGE_SECONDS", "OWNER_FILE", "make_run_folder", "remove_dead_runs"]

OWNER_FILE: Final = ".phonefleet-owner"
#: How old a folder without an owner file must be before it may be taken for a dead run's: the
#: owner file follows the folder within microseconds, and a run of an older test bed names its
#: folder on its processes' command lines within seconds of making it.
OWNERLESS_AGE_SECONDS: Final = 3600.0


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
    in_use = _InUse()
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            if folder.is_symlink() or folder.lstat().st_uid != os.getuid():
                continue
            pid, _, started = (folder / OWNER_FILE).read_text().strip().partition(" ")
            owner = int(pid)
        except FileNotFoundError:  # no owner recorded: an older test bed's, or brand new
            if not _abandoned(folder, in_use):
                continue
        except (OSError, ValueError):  # not a folder, unreadable
            continue
        else:
            if _started(owner) == started:
                continue  # its run is alive
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _abandoned(folder: Path, in_use: Callable[[Path], bool]) -> bool:
    """Whether a folder without an owner file is surely a dead run's: older than
    ``OWNERLESS_AGE_SECONDS`` and used by no live process."""
    try:
        age = time.time() - folder.lstat().st_mtime
    except OSError:  # gone meanwhile
        return False
    return age > OWNERLESS_AGE_SECONDS and not in_use(folder)


class _InUse:
    """Whether a live process names a folder on its command line or works in it (this user's
    processes, read once per removal round)."""

    def __init__(self) -> None:
        self._seen: list[tuple[bytes, str]] | None = None

    def __call__(self, folder: Path) -> bool:
        if self._seen is None:
            self._seen = list(_processes())
        name, inside = str(folder).encode(), f"{folder}{os.sep}"
        return any(
            name in cmdline or f"{cwd}{os.sep}".startswith(inside) for cmdline, cwd in self._seen
        )


def _processes() -> list[tuple[bytes, str]]:
    """Command line and working directory of every process this user may read."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        cwd = ""
        with contextlib.suppress(OSError):  # another user's (or ended meanwhile)
            cwd = os.readlink(proc / "cwd")
        found.append((cmdline, cwd))
    return found


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None
    when there is no such process."""
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name start at 3
    return None
