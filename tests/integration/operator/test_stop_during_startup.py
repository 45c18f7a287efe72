"""An operator stopped before its start-up finished leaves no thread behind.

kopf runs no clean-up handler after a start-up that failed or was cancelled (a stop during it):
what the start-up had started (the admission views' watch threads, the Geelark session, the API
pool) was left running after the event loop closed; a watch then failed on every hand-over
("Event loop is closed", CI: a test's teardown that started an operator and stopped it at once).

The start-up is held deterministically: the admission server's start waits for ever (as a
listen that never completes would), after the admission watches started, until the operator is
stopped. Real API server, the operator as its ServiceAccount, in-process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from phonefleet_operator.webhook import AdmissionServer
from phonefleet_testbed.scenarios import Operator
from phonefleet_testbed.waiting import wait_for


def _admission_watches(before: set[threading.Thread]) -> list[str]:
    """The admission watch threads started since ``before`` that still run."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.endswith(" for admission") and t not in before
    ]


def test_an_operator_stopped_during_its_start_up_stops_the_watches_it_started(
    operator_factory: Callable[..., Operator],
    webhook_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never_listening(self: AdmissionServer) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(AdmissionServer, "start", never_listening)
    before = set(threading.enumerate())
    operator = operator_factory(**webhook_env)
    wait_for(
        lambda: len(_admission_watches(before)) == 2,
        60,
        message="the admission watches to start",
    )
    operator_factory.stop(operator)  # type: ignore[attr-defined]
    # The clean-up waits 5 s for the watch threads; a deadline well past it.
    wait_for(lambda: _admission_watches(before) == [], 30, message="the admission watches to end")
