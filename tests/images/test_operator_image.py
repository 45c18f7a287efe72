"""The operator image against the local control plane and the Geelark simulator."""

from __future__ import annotations

import shutil
from pathlib import Path

from docker_support import Images, http_get, running

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import (
    DEFAULT_TOKEN,
    GeelarkSimulator,
    SimulatorConfig,
    seed_id,
    seed_name,
)
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.scenarios import make_binding
from phonefleet_testbed.waiting import wait_for


def test_operator_image_resolves_and_releases_a_binding_against_the_control_plane(
    images: Images, crds: ControlPlane, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """The operator image, on a real API server and Geelark: /healthz answers 200, a binding
    naming a phone by serialName gets that phone's id from Geelark, and deleting the binding
    completes (the image's operator removes its finalizer); SIGTERM then stops it with 0."""
    # The admin kubeconfig is 0600 and root's; the container runs as uid 1000.
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copyfile(crds.kubeconfig, kubeconfig)
    kubeconfig.chmod(0o644)
    url = f"http://127.0.0.1:{free_port()}/healthz"

    with (
        GeelarkSimulator(SimulatorConfig(phones=2, boot_seconds=0.0)) as simulator,
        running(
            images.operator,
            "--liveness", url,
            env={
                "KUBECONFIG": "/kube/config",
                "PHONEFLEET_GEELARK_URL": simulator.base_url,
                "PHONEFLEET_GEELARK_TOKEN": DEFAULT_TOKEN,
            },
            volumes=[f"{kubeconfig}:/kube/config:ro"],
        ) as operator,
    ):  # fmt: skip
        wait_for(
            lambda: http_get(url)[0] == 200 or not operator.is_running(),
            90,
            interval=0.2,
            message=lambda: f"the operator's {url}; its logs:\n{operator.logs()}",
        )
        assert (http_get(url)[0], operator.is_running()) == (200, True), operator.logs()

        kubectl.apply(make_binding("imaged", seed_name(2), namespace))
        resolved = wait_for(
            lambda: (
                (kubectl.get("phonebinding", "imaged", namespace) or {})
                .get("status", {})
                .get("phone", {})
                .get("id")
            ),
            90,
            message=lambda: f"status.phone.id of the binding; operator logs:\n{operator.logs()}",
        )
        kubectl("delete", "phonebinding", "imaged", "-n", namespace, "--wait=false")
        wait_for(
            lambda: kubectl.get("phonebinding", "imaged", namespace) is None,
            90,
            message=lambda: f"the binding to be deleted; operator logs:\n{operator.logs()}",
        )
        served = simulator.admin.counters().calls("phone/list")

        assert resolved == seed_id(2)
        assert served >= 1
        assert operator.stop() == 0, operator.logs()
