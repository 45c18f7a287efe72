"""The embedded default: a control plane with phonefleet's CRDs plus a Geelark simulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN, GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.lifecycle import StartStop
from phonefleet_testbed.waiting import wait_for

__all__ = [
    "SAMPLE_PHONES",
    "DevEnvironment",
    "add_sample_phones",
    "install_crds",
    "install_operator_namespace",
]

#: The phones manifests/samples name (serialName -> id, None for the next seeded id), so that
#: `kubectl apply -k manifests/samples` on `phonefleet dev up` binds phones that exist.
SAMPLE_PHONES: dict[str, str | None] = {
    "checkout-01": None,
    "search-01": "526209711930868736",
    "spare-01": None,
    "long-run-01": None,
}


def install_operator_namespace(plane: ControlPlane) -> None:
    """The operator's own namespace, as every install has it (it keeps its job key there)."""
    plane.kubectl("apply", "-f", str(repo_root() / "manifests" / "manager" / "namespace.yaml"))


def install_crds(plane: ControlPlane, timeout: float = 30.0) -> None:
    """Apply ``crds/`` with kubectl and wait until the API server serves them."""
    plane.kubectl("apply", "--server-side", "-k", str(repo_root() / "crds"))
    plane.kubectl(
        "wait",
        "--for=condition=Established",
        f"--timeout={timeout}s",
        "crd/phonebindings.phonefleet.dev",
        "crd/phoneclaims.phonefleet.dev",
        "crd/phonepools.phonefleet.dev",
        "crd/phonejobs.phonefleet.dev",
    )
    wait_for(
        lambda: (
            plane.kubectl(
                "get", "phonebindings,phoneclaims,phonepools,phonejobs", "-A", check=False
            ).returncode
            == 0
        ),
        timeout,
        message="PhoneBinding, PhoneClaim, PhonePool and PhoneJob to be served",
    )


def add_sample_phones(simulator: GeelarkSimulator) -> list[str]:
    """Add the phones of manifests/samples to ``simulator``; their serialNames."""
    for name, phone_id in SAMPLE_PHONES.items():
        simulator.admin.create_phone(name, phone_id=phone_id)
    return list(SAMPLE_PHONES)


class DevEnvironment(StartStop):
    """Starts a control plane (CRDs installed) and a simulator; stops both on exit."""

    def __init__(
        self,
        *,
        phones: int = 5,
        boot_seconds: float = 3.0,
        latency_ms: float = 0.0,
        rate_limit_per_minute: int | None = 200,
    ) -> None:
        self.plane = ControlPlane()
        self.simulator = GeelarkSimulator(
            SimulatorConfig(
                phones=phones,
                boot_seconds=boot_seconds,
                latency_ms=latency_ms,
                rate_limit_per_minute=rate_limit_per_minute,
            )
        )
        self.token = DEFAULT_TOKEN
        self.startup_seconds = 0.0

    def start(self) -> None:
        """Start the simulator and the control plane, and install the CRDs."""
        began = time.monotonic()
        try:
            self.simulator.start()
            self.plane.start()
            install_crds(self.plane)
            install_operator_namespace(self.plane)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the control plane and the simulator."""
        self.plane.stop()
        self.simulator.stop()

    def operator_env(self) -> dict[str, str]:
        """Environment variables that point an operator (or a shell) at this environment."""
        return {
            "KUBECONFIG": str(self.plane.kubeconfig),
            "PHONEFLEET_GEELARK_URL": self.simulator.base_url,
            "PHONEFLEET_GEELARK_TOKEN": self.token,
            "PHONEFLEET_KUBECTL": str(self.plane.binaries.path("kubectl")),
        }

    def write_env_file(self, path: Path) -> None:
        """Write ``export NAME=value`` lines for ``eval $(phonefleet dev env)``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"export {name}={value}" for name, value in self.operator_env().items()]
        kubectl_dir = self.plane.binaries.directory
        lines.append(f'export PATH="{kubectl_dir}:$PATH"')
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def binding_spec(self) -> dict[str, Any]:
        """What every binding needs in its spec here (nothing on KWOK: its pods never run)."""
        return {}

    def describe(self) -> str:
        """Human-readable summary of what runs where."""
        return (
            f"  kube-apiserver  {self.plane.server}\n"
            f"  kubeconfig      {self.plane.kubeconfig}\n"
            f"  Geelark sim     {self.simulator.base_url}"
        )
