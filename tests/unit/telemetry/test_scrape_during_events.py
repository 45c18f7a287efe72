"""A scrape of /metrics (in the metrics server's thread) while the event loop records binding
events never fails: a failed scrape is a target down, and the "operator down" alert."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from phonefleet_operator.telemetry import BindingView

CREATED = "2026-01-01T00:00:00Z"
T0 = 1767225600.0  # CREATED as Unix time

#: Rounds of bindings created and deleted while scrapes run (a bound, not a duration).
ROUNDS = 200


def event(uid: str, kind: str = "MODIFIED") -> dict[str, Any]:
    """A watch event of a Bound binding, not Ready since CREATED."""
    ready = {"type": "Ready", "status": "False", "lastTransitionTime": CREATED}
    metadata = {"uid": uid, "namespace": "farm", "creationTimestamp": CREATED}
    status = {"phase": "Bound", "conditions": [ready]}
    return {"type": kind, "object": {"metadata": metadata, "status": status}}


def exposition(view: BindingView) -> str:
    registry = CollectorRegistry()
    registry.register(view)
    return generate_latest(registry).decode()


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Let the interpreter switch threads every microsecond (5 ms by default), so that a scrape
    is interrupted inside its loops as it would be, now and then, in a busy operator."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_scrapes_while_bindings_come_and_go_all_succeed() -> None:
    view = BindingView(clock=lambda: T0 + 100)
    for i in range(2000):
        view.saw(event(f"u{i}"))
    failures: list[BaseException] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            try:
                exposition(view)
            except Exception as error:  # any failure is the finding
                failures.append(error)
                return

    scraper = threading.Thread(target=scrape, name="scraper", daemon=True)
    scraper.start()
    try:
        for _ in range(ROUNDS):
            for i in range(2000, 2100):
                view.saw(event(f"u{i}"))
            for i in range(2000, 2100):
                view.saw(event(f"u{i}", kind="DELETED"))
            if failures:
                break
    finally:
        done.set()
        scraper.join(10)
    assert not scraper.is_alive()
    assert failures == []
    assert "phonefleet_bindings_not_running_longest_seconds" in exposition(view)
