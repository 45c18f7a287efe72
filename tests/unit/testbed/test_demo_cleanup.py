"""``make demo`` leaves no folder of its own behind, and says which process it leaves."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from phonefleet_testbed.demo import dockerd_alive, dockerd_note
from phonefleet_testbed.demo_jobs import stand_in_workers


def test_the_stand_in_workers_folder_is_removed_when_the_demo_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder of the stand-in workers' tokens and run logs goes with them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with stand_in_workers("demo", []) as (workers, settings):
        assert workers == {}
        assert settings["PHONEFLEET_JOBS_ENDPOINT_OVERRIDES"] == "{}"
        assert [p.name[:24] for p in tmp_path.iterdir()] == ["phonefleet-demo-workers-"]
    assert list(tmp_path.iterdir()) == []


def test_a_dockerd_the_demo_found_stopped_and_left_running_is_reported(tmp_path: Path) -> None:
    """dockerd running now, not before: the demo says so and how to stop it; otherwise nothing."""
    pidfile = tmp_path / "docker.pid"
    assert dockerd_note(False, pidfile) is None  # no dockerd at all
    pidfile.write_text(str(os.getpid()))  # a process that runs: this one
    assert dockerd_alive(pidfile)
    note = dockerd_note(False, pidfile)
    assert note is not None
    assert f"kill $(cat {pidfile})" in note
    assert dockerd_note(True, pidfile) is None  # it ran before the demo: not the demo's
