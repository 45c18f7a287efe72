"""`phonefleet jobs import`: the old CSV ledger into PhoneJobs, on a real API server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import make_binding

PHONEFLEET = Path(sys.executable).parent / "phonefleet"

LEDGER = """\
job_id,account,video_path,caption,status,worker_id,claimed_at,completed_at,error,attempts,max_attempts,retry_at,error_type
J-001,insta-001,/videos/a.mp4,first post,pending,,,,,0,3,,
J-002,insta-002,/videos/b.mp4,second post,retrying,,,,timeout,1,3,2026-11-30T09:00:00,
J-003,insta-001,/videos/c.mp4,posted already,success,w1,,,,1,3,,
J-004,insta-404,/videos/d.mp4,nobody has it,pending,,,,,0,3,,
J-005,insta-002,/videos/e.mp4,mid-flight,claimed,w2,2025-12-01T10:00:00,,,0,3,,
"""


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs (apply is idempotent: other modules may have installed them)."""
    install_crds(control_plane)


def bound(kubectl: Kubectl, name: str, namespace: str, serial: str) -> None:
    """A binding whose status says it resolved to the phone ``serial`` (as the operator writes)."""
    kubectl.apply(make_binding(name, serial, namespace))
    status = {"status": {"phone": {"id": f"id-{serial}", "serialName": serial}}}
    kubectl(
        "patch", "pb", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip


def run_import(plane: ControlPlane, ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script against the test bed."""
    return subprocess.run(
        [str(PHONEFLEET), "jobs", "import", str(ledger), *args],
        env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_places_open_rows_by_serial_name_and_reports_the_rest(
    control_plane: ControlPlane, crds: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """Open rows become PhoneJobs on the binding of their account's phone (retry_at ->
    notBefore, attempts left -> maxAttempts); a finished row is left out; a row without a
    binding and a row claimed mid-flight get one line each, and the exit code is 1. A dry run
    says how many it would create and creates none. A second import creates nothing twice."""
    bound(kubectl, "one", namespace, "insta-001")
    bound(kubectl, "two", namespace, "insta-002")
    ledger = tmp_path / "parallel_progress.csv"
    ledger.write_text(LEDGER)
    dry = run_import(control_plane, ledger, "-n", namespace, "--dry-run")
    assert (
        dry.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "5 rows: 2 jobs to create (--dry-run: none created), 1 finished in the old ledger, "
            "2 not placed"
        )
    )  # was "0 jobs created, 0 existed already": as if the import had found nothing
    assert kubectl.list("phonejobs", namespace) == []

    result = run_import(control_plane, ledger, "-n", namespace)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert (
        "line 5 (job J-004): no PhoneBinding holds a phone with serialName 'insta-404'" in lines[0]
    )
    assert "line 6 (job J-005): status 'claimed'" in lines[1]
    assert lines[2].endswith(
        "2 jobs created, 0 existed already, 1 finished in the old ledger, 2 not placed"
    )
    jobs = {j["metadata"]["name"]: j["spec"] for j in kubectl.list("phonejobs", namespace)}
    assert set(jobs) == {"j-001", "j-002"}
    assert jobs["j-001"]["bindingName"] == "one"
    assert jobs["j-001"]["params"] == {"video": "/videos/a.mp4", "caption": "first post"}
    assert (jobs["j-002"]["bindingName"], jobs["j-002"]["maxAttempts"]) == ("two", 2)
    assert jobs["j-002"]["notBefore"] == "2026-11-30T09:00:00Z"

    again = run_import(control_plane, ledger, "-n", namespace)

    assert "0 jobs created, 2 existed already" in again.stderr


def test_a_row_whose_name_another_jobs_work_holds_is_a_problem_not_existed_already(
    control_plane: ControlPlane, crds: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """Job names are lossy (lower case, dashes, 63 characters): a later ledger's J_001 is named
    j-001 like J-001 imported before. Its work (another video) is not done by j-001: the row is
    reported and the exit code is 1, where the import used to count it as existing and leave it
    undone. The first ledger imported again still finds its job "existed already"."""
    bound(kubectl, "one", namespace, "insta-001")
    header = "job_id,account,video_path,caption,status\n"
    first = tmp_path / "day-1.csv"
    first.write_text(header + "J-001,insta-001,/a.mp4,a,pending\n")
    assert run_import(control_plane, first, "-n", namespace).returncode == 0
    later = tmp_path / "day-2.csv"
    later.write_text(header + "J_001,insta-001,/b.mp4,b,pending\n")

    result = run_import(control_plane, later, "-n", namespace)

    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"day-2.csv: line 2 (job J_001): PhoneJob {namespace}/j-001 exists already for other "
        "work (another binding, task or params): not imported; rename the job_id",
        "day-2.csv: 1 rows: 0 jobs created, 0 existed already, 0 finished in the old ledger, "
        "1 not placed",
    ]
    (job,) = kubectl.list("phonejobs", namespace)
    assert job["spec"]["params"] == {"video": "/a.mp4", "caption": "a"}
    again = run_import(control_plane, first, "-n", namespace)
    assert (again.returncode, "0 jobs created, 1 existed already" in again.stderr) == (0, True)


def test_retry_failed_creates_the_failed_jobs_again_and_leaves_the_others(
    control_plane: ControlPlane, crds: None, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """Imported jobs, one Failed (its task image was missing) and one Succeeded: importing again
    creates nothing; with --retry-failed the dry run counts the Failed one, and the import
    deletes it and creates it again under its name (a new object, no attempts), leaving the
    Succeeded one alone."""
    bound(kubectl, "one", namespace, "insta-001")
    header = "job_id,account,video_path,caption,status\n"
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(header + "J-1,insta-001,/a.mp4,a,pending\nJ-2,insta-001,/b.mp4,b,pending\n")
    assert run_import(control_plane, ledger, "-n", namespace).returncode == 0
    for name, phase in (("j-1", "Failed"), ("j-2", "Succeeded")):
        kubectl(
            "patch", "pj", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": phase, "reason": "UnknownTask"}}),
        )  # fmt: skip
    before = {j["metadata"]["name"]: j["metadata"]["uid"] for j in kubectl.list("pj", namespace)}

    plain = run_import(control_plane, ledger, "-n", namespace)
    dry = run_import(control_plane, ledger, "-n", namespace, "--retry-failed", "--dry-run")
    result = run_import(control_plane, ledger, "-n", namespace, "--retry-failed")

    assert "0 jobs created, 2 existed already" in plain.stderr
    assert (
        "2 rows: 2 jobs to create (1 of them Failed already: deleted and created again) "
        "(--dry-run: none created)" in dry.stderr
    )
    assert result.returncode == 0, result.stderr
    assert (
        "1 jobs created (1 of them Failed already: deleted and created again), "
        "1 existed already" in result.stderr
    )
    after = {j["metadata"]["name"]: j for j in kubectl.list("pj", namespace)}
    assert after["j-1"]["metadata"]["uid"] != before["j-1"]
    assert (after["j-1"].get("status") or {}).get("phase") in (None, "Pending")
    assert after["j-2"]["metadata"]["uid"] == before["j-2"]
    assert after["j-2"]["status"]["phase"] == "Succeeded"
