"""The in-process runner: a simulator served from a background thread, started and stopped."""

from __future__ import annotations

import pytest
import requests

from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig


def test_context_manager_serves_inside_and_frees_the_port_after() -> None:
    """Inside `with` the simulator answers on 127.0.0.1; after it the port is closed."""
    with GeelarkSimulator(SimulatorConfig(phones=1)) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
        assert sim.admin.is_healthy()
        url = sim.base_url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_sim/health", timeout=2)
    sim.stop()  # a second stop is harmless


def test_a_busy_port_fails_start_in_the_callers_thread() -> None:
    """Starting on a port another simulator holds raises OSError from start()."""
    with GeelarkSimulator() as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        second = GeelarkSimulator(SimulatorConfig(port=port))
        with pytest.raises(OSError, match="address already in use"):
            second.start()
