"""``make demo`` leaves no folder of its own behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

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
