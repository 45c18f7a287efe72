"""A test bed run killed with SIGKILL leaves its temp folder; the next run of the same kind
removes it, and never the folder of a run that is alive or of a folder it cannot attribute."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import pytest

from phonefleet_testbed.binaries import Binaries
from phonefleet_testbed.controlplane.cluster import ControlPlane
from phonefleet_testbed.demo_jobs import stand_in_workers
from phonefleet_testbed.leftovers import (
    OWNER_FILE,
    OWNERLESS_AGE_SECONDS,
    make_run_folder,
    remove_dead_runs,
)


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own temp dir: other runs' folders on the machine are not looked at."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def folder(parent: Path, name: str, owner: str | None) -> Path:
    made = parent / name
    made.mkdir()
    (made / "etcd").mkdir()  # something inside, as a control plane's folder has
    if owner is not None:
        (made / OWNER_FILE).write_text(owner)
    return made


def test_only_folders_whose_owner_process_is_gone_are_removed(own_temp_dir: Path) -> None:
    """Dead owner and a reused pid (same pid, another start time): removed. Alive owner, no
    owner recorded, another prefix: kept."""
    dead = folder(own_temp_dir, "phonefleet-cp-dead", f"{dead_pid()} 12345\n")
    reused = folder(own_temp_dir, "phonefleet-cp-reused", f"{os.getpid()} 1\n")
    unknown = folder(own_temp_dir, "phonefleet-cp-older-testbed", None)
    other = folder(own_temp_dir, "phonefleet-demo-workers-x", f"{dead_pid()} 1\n")
    alive = make_run_folder("phonefleet-cp-")

    assert not dead.exists()
    assert not reused.exists()
    assert alive.is_dir()
    assert unknown.is_dir()
    assert other.is_dir()
    assert remove_dead_runs("phonefleet-cp-") == []  # this process is alive: its folder stays
    assert alive.is_dir()


def test_a_control_plane_removes_the_folder_a_killed_run_left(own_temp_dir: Path) -> None:
    """A ControlPlane made after a run died with SIGKILL removes that run's folder, and records
    its own owner (it is not started: making it is enough)."""
    killed = folder(own_temp_dir, "phonefleet-cp-killed", f"{dead_pid()} 12345\n")

    plane = ControlPlane(binaries=cast(Binaries, object()))
    try:
        assert not killed.exists()
        assert plane.work_dir.parent == own_temp_dir
        assert (plane.work_dir / OWNER_FILE).read_text().split()[0] == str(os.getpid())
    finally:
        plane.stop()
    assert list(own_temp_dir.iterdir()) == []


def test_the_demo_workers_folder_of_a_killed_demo_goes_at_the_next(own_temp_dir: Path) -> None:
    killed = folder(own_temp_dir, "phonefleet-demo-workers-killed", f"{dead_pid()} 12345\n")

    with stand_in_workers("demo", []):
        assert not killed.exists()
        (mine,) = own_temp_dir.iterdir()
        assert (mine / OWNER_FILE).is_file()


def aged(made: Path, seconds: float) -> Path:
    """``made`` as if it had been made ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(made, (then, then))
    return made


def test_an_ownerless_folder_goes_once_old_and_unused_by_any_process(own_temp_dir: Path) -> None:
    """Folders of a test bed older than the owner record: one older than the age that no
    process names is removed; a young one (maybe being made this instant) and an old one a live
    process names on its command line (as a control plane's etcd names its data dir) stay."""
    old = aged(folder(own_temp_dir, "phonefleet-cp-old", None), OWNERLESS_AGE_SECONDS + 60)
    young = aged(folder(own_temp_dir, "phonefleet-cp-young", None), OWNERLESS_AGE_SECONDS - 60)
    used = aged(folder(own_temp_dir, "phonefleet-cp-used", None), OWNERLESS_AGE_SECONDS + 60)
    user = subprocess.Popen(  # says it runs, then blocks on its stdin until the test closes it
        [
            sys.executable,
            "-c",
            "import sys; print('running', flush=True); sys.stdin.read()",
            f"--data-dir={used}/etcd",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert user.stdout is not None
        # Its command line is readable once it runs (mid-exec /proc shows it empty).
        assert user.stdout.readline() == "running\n"
        assert remove_dead_runs("phonefleet-cp-") == [old]
    finally:
        assert user.stdin is not None
        user.stdin.close()
        user.wait(timeout=30)
        if user.stdout is not None:
            user.stdout.close()
    assert young.is_dir()
    assert used.is_dir()
    assert remove_dead_runs("phonefleet-cp-") == [used]  # its process has ended
