"""Waiting for a condition with a deadline: the only way tests and the harness synchronise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["StopWaiting", "WaitTimeout", "wait_for", "wait_until"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline."""


class StopWaiting(Exception):
    """Raised by a predicate when what it waits for can never come (the process that would
    serve has exited): the wait ends with it at once instead of running out its deadline."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    *,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Exceptions raised by the predicate count as "not yet" and the last one is chained to the
    timeout, so a probe against a server that is still starting needs no try/except of its own.
    :class:`StopWaiting` is the exception: it ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except StopWaiting:
            raise
        except Exception as error:
            last_error = error
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"Timed out after {timeout:.1f}s waiting for {text}") from last_error
        time.sleep(interval)


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.02
) -> None:
    """:func:`wait_for` for a yes/no ``condition``, named by ``what`` in the failure."""
    wait_for(condition, timeout, interval=interval, message=what)
