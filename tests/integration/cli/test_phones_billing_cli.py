"""`phonefleet phones list --billing` and `phones stop`: phones Geelark bills with no live binding,
read from a real cluster's bindings and PhoneClaims and the simulator's phone list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.scenarios import make_binding, make_claim

PHONEFLEET = Path(sys.executable).parent / "phonefleet"


def unique_id() -> str:
    return f"9{uuid.uuid4().int % 10**17:017d}"


@pytest.fixture(scope="module")
def crds(control_plane: ControlPlane) -> None:
    """phonefleet's CRDs on the session's control plane."""
    install_crds(control_plane)


class Scene:
    """Phones of one test: held by a live binding, running unbound, held by a deleted binding's
    claim, and stopped."""

    def __init__(self, sim: GeelarkSimulator, kubectl: Kubectl, namespace: str) -> None:
        self.sim = sim
        self.held, self.loose, self.orphaned, self.stopped = (unique_id() for _ in range(4))
        for name, phone_id, status in (
            ("held", self.held, 0),
            ("loose", self.loose, 0),
            ("orphaned", self.orphaned, 0),
            ("stopped", self.stopped, 2),
        ):
            sim.admin.create_phone(name, phone_id=phone_id, status=status)
        kubectl.apply(make_binding("alpha", self.held, namespace))
        alpha = kubectl.get("phonebinding", "alpha", namespace)
        assert alpha is not None
        for name, phone_id, uid in (
            ("held", self.held, alpha["metadata"]["uid"]),
            ("orphaned", self.orphaned, "gone"),
        ):
            kubectl.apply(make_claim(phone_id, namespace, "alpha", uid, serial_name=name))


@pytest.fixture
def scene(crds: None, kubectl: Kubectl, namespace: str) -> Iterator[Scene]:
    with GeelarkSimulator(SimulatorConfig(phones=0)) as sim:
        built = Scene(sim, kubectl, namespace)
        yield built
        for phone_id in (built.held, built.orphaned):
            kubectl("delete", "phoneclaim", phone_id, "--wait=false", check=False)


def phonefleet(scene: Scene, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script with the simulator's credentials and a kubeconfig."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_GEELARK_")}
    env |= {
        "PHONEFLEET_GEELARK_URL": scene.sim.base_url,
        "PHONEFLEET_GEELARK_TOKEN": DEFAULT_TOKEN,
        "KUBECONFIG": str(kubeconfig),
    }
    return subprocess.run(
        [str(PHONEFLEET), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_billed_phones_no_live_binding_holds_are_listed_with_exit_code_1(
    control_plane: ControlPlane, scene: Scene, tmp_path: Path
) -> None:
    """The running phone nobody claims and the one whose claim's holder is gone are listed, new
    at first and then as long as the state file remembers; the report says how to stop them."""
    state = tmp_path / "seen.json"
    args = ("phones", "list", "--billing", "--state-file", str(state))

    first = phonefleet(scene, control_plane.kubeconfig, *args)

    assert first.returncode == 1, first.stderr
    rows = [line.split() for line in first.stdout.splitlines()[:3]]
    assert rows == [
        ["ID", "SERIAL", "NAME", "STATUS", "RUNNING", "UNBOUND", "BINDING"],
        [scene.loose, "loose", "Running", "new", "-"],
        [scene.orphaned, "orphaned", "Running", "new", "-"],
    ]
    assert f"phonefleet phones stop {scene.loose} {scene.orphaned}" in first.stdout
    assert "never stops these itself" in first.stdout

    seen = json.loads(state.read_text())
    seen[scene.loose] = time.time() - 2 * 3600 - 300
    state.write_text(json.dumps(seen))
    again = phonefleet(scene, control_plane.kubeconfig, *args, "-o", "json")

    assert again.returncode == 1, again.stderr
    listed = {p["id"]: p for p in json.loads(again.stdout)["phones"]}
    assert sorted(listed) == sorted([scene.loose, scene.orphaned])
    assert listed[scene.loose]["unboundSeconds"] >= 2 * 3600 + 300
    assert listed[scene.orphaned]["unboundSeconds"] < 2 * 3600


def test_a_phone_billed_while_its_binding_is_suspended_is_listed_naming_the_binding(
    control_plane: ControlPlane, scene: Scene, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """A Suspended binding keeps its claim with its phone meant off; the phone still running
    (an attempt being fenced, or started behind the operator's back) is billed, so the report
    lists it, naming the binding and why, and says the binding stops it, not `phones stop`.
    Before, the claim of a live binding counted as running the phone, whatever its phase."""
    paused = unique_id()
    scene.sim.admin.create_phone("paused", phone_id=paused, status=0)
    kubectl.apply(make_binding("bravo", paused, namespace, suspend=True))
    bravo = kubectl.get("phonebinding", "bravo", namespace)
    assert bravo is not None
    kubectl.apply(make_claim(paused, namespace, "bravo", bravo["metadata"]["uid"]))
    status = {
        "phase": "Suspended",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "FencingAttempt",
                "message": "stopped once no job runs on it",
                "lastTransitionTime": "2026-11-30T08:00:00Z",
            }
        ],
    }
    kubectl(
        "patch", "pb", "bravo", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    try:
        report = phonefleet(
            scene, control_plane.kubeconfig, "phones", "list", "--billing",
            "--state-file", str(tmp_path / "seen.json"), "-o", "json",
        )  # fmt: skip
        refused = phonefleet(scene, control_plane.kubeconfig, "phones", "stop", paused)
    finally:
        kubectl("delete", "phoneclaim", paused, "--wait=false", check=False)

    assert report.returncode == 1, report.stderr
    listed = {p["id"]: p for p in json.loads(report.stdout)["phones"]}
    assert listed[paused]["binding"] == f"{namespace}/bravo (Suspended: FencingAttempt)"
    assert listed[scene.loose]["binding"] is None
    assert refused.returncode == 1
    assert f"a live PhoneBinding holds {paused}" in refused.stderr


def test_stop_refuses_a_held_phone_and_stops_the_others_until_none_is_billed(
    control_plane: ControlPlane, scene: Scene, tmp_path: Path
) -> None:
    """`phones stop` will not stop a phone a live binding holds (a refusal: exit 1); stopping the
    two leaks empties the report and the check exits 0."""
    refused = phonefleet(scene, control_plane.kubeconfig, "phones", "stop", scene.held)
    assert refused.returncode == 1
    assert f"a live PhoneBinding holds {scene.held}" in refused.stderr
    assert scene.held in scene.sim.admin.running_phone_ids()

    stopped = phonefleet(
        scene, control_plane.kubeconfig, "phones", "stop", scene.loose, scene.orphaned
    )
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.split("\n")[:2] == [f"Stopped {scene.loose}", f"Stopped {scene.orphaned}"]

    report = phonefleet(
        scene,
        control_plane.kubeconfig,
        "phones",
        "list",
        "--billing",
        "--state-file",
        str(tmp_path / "seen.json"),
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert report.stdout.strip() == "No phone is billed without a binding."
    assert sorted(scene.sim.admin.running_phone_ids()) == [scene.held]


def test_without_the_cluster_the_check_cannot_tell_and_exits_2(
    scene: Scene, tmp_path: Path
) -> None:
    """No usable kubeconfig: nothing is called unbound; exit 2 with the reason."""
    result = phonefleet(scene, tmp_path / "missing", "phones", "list", "--billing")
    assert result.returncode == 2
    assert "the cluster could not be read" in result.stderr
    assert result.stdout == ""
