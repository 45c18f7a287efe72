"""What runs on the real node: the operator's settings for it, the phones' simulator, bindings.

Shared by the real-node tests, the benchmark and ``phonefleet dev up --real-node``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.node.bed import NodeBed
from phonefleet_testbed.node.images import NodeImages
from phonefleet_testbed.scenarios import operator_env

__all__ = ["FAKE_CAPABILITIES", "fake_driver_worker", "node_operator_env", "node_simulator"]

# What the worker needs to open a session with Appium's fake driver (in the Appium image).
FAKE_CAPABILITIES = {
    "platformName": "Fake",
    "appium:automationName": "Fake",
    "appium:deviceName": "Fake",
    "appium:app": "/opt/appium/fake_app.xml",
    "appium:newCommandTimeout": 120,
}


def fake_driver_worker(**extra: Any) -> dict[str, Any]:
    """A binding's ``spec.worker``: capabilities for Appium's fake driver."""
    value = json.dumps(FAKE_CAPABILITIES)
    env = [{"name": "PHONEFLEET_WORKER_APPIUM_CAPABILITIES", "value": value}]
    return {"env": env, **extra}


def node_simulator(bed: NodeBed, *, phones: int = 0, boot_seconds: float = 0.3) -> GeelarkSimulator:
    """A simulator (not started) whose API and phones' ADB endpoints pods can reach."""
    return GeelarkSimulator(
        SimulatorConfig(
            phones=phones,
            boot_seconds=boot_seconds,
            adb_enable_seconds=0.1,
            host=bed.network.host_ip,
            serve_adb=True,
            adb_host=bed.network.host_ip,
            # A fresh range each time: a phone's port is the base plus its number.
            adb_port_base=42_000 + 1000 * (uuid.uuid4().int % 16),
        )
    )


def node_operator_env(
    bed: NodeBed, images: NodeImages, simulator: GeelarkSimulator
) -> dict[str, str]:
    """The operator's settings for the real node: local images, never pulled."""
    return {
        **operator_env(bed.plane, simulator),
        "PHONEFLEET_WORKER_IMAGE": images.worker,
        "PHONEFLEET_WORKER_IMAGE_PULL_POLICY": "Never",
        "PHONEFLEET_APPIUM_IMAGE": images.appium,
        "PHONEFLEET_APPIUM_IMAGE_PULL_POLICY": "Never",
    }
