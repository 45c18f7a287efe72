"""pytest plugin of the chaos tests: ``--chaos-seconds``, ``--chaos-pool-seconds``,
``--chaos-seed``, ``--chaos-without`` and their time limits."""

from __future__ import annotations

import pytest

__all__ = [
    "DEFAULT_CHAOS_SECONDS",
    "DEFAULT_POOL_SECONDS",
    "chaos_pool_seconds",
    "chaos_seconds",
    "chaos_seed",
    "chaos_without",
]

#: Seconds of faults in CI; the whole test then takes about three minutes on two loaded cores.
DEFAULT_CHAOS_SECONDS = 100.0
#: Seconds of faults of the pooled run in CI (shorter: it adds to make test).
DEFAULT_POOL_SECONDS = 60.0
#: What the test may take beyond its seconds of faults: setup, settling, deletion.
_OVERHEAD_SECONDS = 420


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the chaos test's options."""
    group = parser.getgroup("chaos", "the seeded chaos test (tests/integration/chaos)")
    group.addoption(
        "--chaos-seconds",
        type=float,
        default=DEFAULT_CHAOS_SECONDS,
        help=f"seconds of injected faults (default {DEFAULT_CHAOS_SECONDS:g})",
    )
    group.addoption(
        "--chaos-pool-seconds",
        type=float,
        default=DEFAULT_POOL_SECONDS,
        help=f"seconds of injected faults of the pooled run (default {DEFAULT_POOL_SECONDS:g})",
    )
    group.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help="seed of every random choice of the run (default: a new one, printed)",
    )
    group.addoption(
        "--chaos-without",
        default="",
        help="fault kinds left out of the seed's timeline, comma-separated (the rest is unchanged)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``chaos`` marker (the suite runs with --strict-markers)."""
    config.addinivalue_line("markers", "chaos: the seeded chaos test; its time limit follows it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each chaos test a time limit that grows with its seconds of faults (a test marked
    ``chaos(pooled=True)`` runs ``--chaos-pool-seconds``)."""
    for item in items:
        marker = item.get_closest_marker("chaos")
        if marker is not None:
            pooled = bool(marker.kwargs.get("pooled"))
            seconds = chaos_pool_seconds(config) if pooled else chaos_seconds(config)
            item.add_marker(pytest.mark.timeout(int(seconds) + _OVERHEAD_SECONDS))


def chaos_seconds(config: pytest.Config) -> float:
    """The ``--chaos-seconds`` of this session."""
    return float(config.getoption("--chaos-seconds"))


def chaos_pool_seconds(config: pytest.Config) -> float:
    """The ``--chaos-pool-seconds`` of this session."""
    return float(config.getoption("--chaos-pool-seconds"))


def chaos_seed(config: pytest.Config) -> int | None:
    """The ``--chaos-seed`` of this session, None when not given."""
    value = config.getoption("--chaos-seed")
    return None if value is None else int(value)


def chaos_without(config: pytest.Config) -> frozenset[str]:
    """The fault kinds ``--chaos-without`` leaves out."""
    text = str(config.getoption("--chaos-without"))
    return frozenset(kind.strip() for kind in text.split(",") if kind.strip())
