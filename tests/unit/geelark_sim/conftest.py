"""Fixtures for the Geelark simulator's tests: a simulator on a manual clock, and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from typing import Any

import pytest

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    ManualClock,
    OpenApiProbe,
    SimulatorAdmin,
    SimulatorConfig,
)

SEEDED_PHONES = 5
BOOT_SECONDS = 30.0


@pytest.fixture
def clock() -> ManualClock:
    """The simulator's clock: it moves only when a test advances it."""
    return ManualClock()


@pytest.fixture
def make_sim(clock: ManualClock) -> Iterator[Callable[..., GeelarkSimulator]]:
    """Start a simulator with SimulatorConfig overrides; every one is stopped after the test."""
    with ExitStack() as started:

        def make(**overrides: Any) -> GeelarkSimulator:
            settings: dict[str, Any] = {
                "phones": SEEDED_PHONES,
                "boot_seconds": BOOT_SECONDS,
                "clock": clock,
            }
            config = SimulatorConfig(**(settings | overrides))
            return started.enter_context(GeelarkSimulator(config))

        yield make


@pytest.fixture
def make_probe() -> Iterator[Callable[..., OpenApiProbe]]:
    """Make raw Open API callers (closed after the test)."""
    with ExitStack() as probes:

        def make(simulator: GeelarkSimulator, **credentials: Any) -> OpenApiProbe:
            return probes.enter_context(closing(OpenApiProbe(simulator.base_url, **credentials)))

        yield make


@pytest.fixture
def sim(make_sim: Callable[..., GeelarkSimulator]) -> GeelarkSimulator:
    """A simulator with five seeded phones, a 30 s boot and instant ADB, on the manual clock."""
    return make_sim()


@pytest.fixture
def api(sim: GeelarkSimulator, make_probe: Callable[..., OpenApiProbe]) -> OpenApiProbe:
    """Raw Open API calls to `sim` with its default credentials."""
    return make_probe(sim)


@pytest.fixture
def admin(sim: GeelarkSimulator) -> SimulatorAdmin:
    """The admin client of `sim`."""
    return sim.admin


@pytest.fixture
def start_phone(api: OpenApiProbe, clock: ManualClock) -> Callable[[str], dict[str, Any]]:
    """Start a phone through the Open API and let it finish booting; returns its start detail."""

    def start(phone_id: str) -> dict[str, Any]:
        data = api.data("phone/start", {"ids": [phone_id]})
        assert data["failDetails"] == []
        clock.advance(BOOT_SECONDS)
        detail: dict[str, Any] = data["successDetails"][0]
        return detail

    return start
