"""The operator image against the local control plane and the Geelark simulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docker_support import Images, http_get, running

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_for


def test_operator_image_answers_liveness_against_the_control_plane(
    images: Images, crds: ControlPlane, tmp_path: Path
) -> None:
    """The operator image starts on a real API server and Geelark, and /healthz answers 200."""
    # The admin kubeconfig is 0600 and root's; the container runs as uid 1000.
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copyfile(crds.kubeconfig, kubeconfig)
    kubeconfig.chmod(0o644)
    url = f"http://127.0.0.1:{free_port()}/healthz"

    with (
        GeelarkSimulator(SimulatorConfig(phones=2)) as simulator,
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
        status, body = http_get(url)

        assert (status, operator.is_running()) == (200, True), operator.logs()
        assert "geelark" in json.loads(body), body
        assert operator.stop() == 0, operator.logs()
