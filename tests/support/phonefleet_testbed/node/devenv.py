"""``phonefleet dev up --real-node`` and ``make demo`` on a real node, or KWOK where none can run.

:class:`RealNodeEnvironment` is a :class:`~phonefleet_testbed.devenv.DevEnvironment` whose control
plane has a real node (the KWOK node cordoned), whose simulator serves the phones' ADB endpoints
to the pods, and whose operator settings name the local images.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from phonefleet_testbed.devenv import DevEnvironment, install_crds, install_operator_namespace
from phonefleet_testbed.geelark_sim import DEFAULT_TOKEN
from phonefleet_testbed.node.bed import NodeBed, real_node_bed
from phonefleet_testbed.node.images import NodeImages, ensure_images
from phonefleet_testbed.node.support import real_node_unavailable
from phonefleet_testbed.node.workload import fake_driver_worker, node_operator_env, node_simulator

__all__ = ["RealNodeEnvironment", "dev_environment"]


class RealNodeEnvironment(DevEnvironment):
    """A control plane with a real node, the images imported, CRDs installed, and a simulator."""

    def __init__(self, *, phones: int = 5, boot_seconds: float = 3.0) -> None:
        # No DevEnvironment.__init__: the control plane can only be made once the node's network
        # exists (it listens on the veth's host end), in start().
        self._phones = phones
        self._boot_seconds = boot_seconds
        self._stack = contextlib.ExitStack()
        self.token = DEFAULT_TOKEN
        self.startup_seconds = 0.0
        self.images: NodeImages | None = None
        self.bed: NodeBed | None = None

    def start(self) -> None:
        """Make the node's network, the control plane and the node; import the images, install
        the CRDs, start the simulator."""
        began = time.monotonic()
        try:
            self.images = ensure_images()
            self.bed = self._stack.enter_context(real_node_bed())
            self.plane = self.bed.plane
            self.bed.node.import_images(*self.images.all)
            install_crds(self.plane)
            install_operator_namespace(self.plane)
            simulator = node_simulator(
                self.bed, phones=self._phones, boot_seconds=self._boot_seconds
            )
            self.simulator = self._stack.enter_context(simulator)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the simulator, the node and the control plane; remove the node's network."""
        self._stack.close()

    def operator_env(self) -> dict[str, str]:
        """The dev environment's variables plus the local worker and Appium images."""
        assert self.bed is not None
        assert self.images is not None
        node = node_operator_env(self.bed, self.images, self.simulator)
        keep = ("IMAGE", "PULL_POLICY")
        return {**super().operator_env(), **{k: v for k, v in node.items() if k.endswith(keep)}}

    def binding_spec(self) -> dict[str, Any]:
        """What a binding needs on this node: the Appium fake driver's capabilities."""
        return {"worker": fake_driver_worker()}

    def describe(self) -> str:
        """What runs where, the real node included."""
        assert self.bed is not None
        network = self.bed.network
        return (
            f"{super().describe()}\n"
            f"  real node       {self.bed.node.name} at {network.node_ip} "
            f"(pods {network.pod_cidr}, network namespace {network.namespace})"
        )


def dev_environment(
    *, real_node: bool, echo: Callable[[str], None], phones: int = 5, boot_seconds: float = 3.0
) -> DevEnvironment:
    """A real-node environment when asked for and possible; else KWOK, saying why in one line."""
    if real_node:
        reason = real_node_unavailable()
        if reason is None:
            return RealNodeEnvironment(phones=phones, boot_seconds=boot_seconds)
        echo(f"No real node on this machine ({reason}): using the KWOK node instead.")
    return DevEnvironment(phones=phones, boot_seconds=boot_seconds)
