"""Fixtures of the Geelark layer's tests: live simulators and clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from typing import Any

import pytest

from phonefleet_operator.geelark import CallPace, GeelarkClient
from phonefleet_operator.settings import GeelarkSettings
from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig

from .factories import make_client, make_settings

SimulatorFactory = Callable[..., GeelarkSimulator]


@pytest.fixture
def start_simulator() -> Iterator[SimulatorFactory]:
    """Start simulators with these config fields (instant boot unless given); stop them after."""
    with ExitStack() as started:

        def start(**config: Any) -> GeelarkSimulator:
            config.setdefault("boot_seconds", 0.0)
            return started.enter_context(GeelarkSimulator(SimulatorConfig(**config)))

        yield start


@pytest.fixture
def simulator(start_simulator: SimulatorFactory) -> GeelarkSimulator:
    """A simulator with five phones that boot instantly."""
    return start_simulator(phones=5)


ClientFactory = Callable[..., AbstractAsyncContextManager[GeelarkClient]]


@pytest.fixture
def open_client() -> ClientFactory:
    """Open a client on a simulator: ``async with open_client(sim, **settings) as client``."""

    @asynccontextmanager
    async def open_(
        simulator: GeelarkSimulator,
        settings: GeelarkSettings | None = None,
        *,
        limiter: CallPace | None = None,
        **overrides: Any,
    ) -> AsyncIterator[GeelarkClient]:
        chosen = settings or make_settings(**overrides)
        chosen = chosen.model_copy(update={"url": simulator.base_url})
        async with make_client(chosen, limiter=limiter) as client:
            yield client

    return open_
