"""Stopping and pacing the main loop: the stop request, interruptible waits and the liveness beat.

Every wait of the device session goes through a ``Lifecycle``: it sleeps in short slices, beats
the liveness clock on each slice and raises ``StopRequested`` as soon as SIGTERM arrives, so a
stop interrupts the current step instead of waiting for it. Tests pass their own implementation
with a fake clock (see ``Pacer``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["CallTimedOut", "Lifecycle", "Pacer", "StopRequested", "call_with_deadline"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StopRequested(Exception):
    """Raised inside a step when the worker was asked to stop."""


class CallTimedOut(Exception):
    """Raised when a call given a deadline did not return in time, or was told to stop (the
    call is abandoned); ``abandoned`` says why in the second case."""

    def __init__(self, message: str, *, abandoned: str | None = None) -> None:
        super().__init__(message)
        self.abandoned = abandoned


class Pacer(Protocol):
    """What the device session needs from time: a clock, stop-aware waits and the beat."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait, raising StopRequested when a stop is requested meanwhile."""
        ...

    def check(self) -> None:
        """Raise StopRequested if a stop was requested."""
        ...

    def beat(self) -> None:
        """Record that the main loop turned (for ``/livez``)."""
        ...

    def call(
        self,
        func: Callable[[], T],
        *,
        name: str,
        deadline: float | None = None,
        abandon: Callable[[], str | None] | None = None,
    ) -> T:
        """Run a long blocking call; give up on it (StopRequested) when a stop is requested,
        and (CallTimedOut) after ``deadline`` seconds when one is given, or as soon as
        ``abandon`` names a reason."""
        ...

    @property
    def stop_event(self) -> threading.Event:
        """Set once a stop is requested (tasks watch it)."""
        ...

    def enter_cleanup(self) -> None:
        """Stop interrupting blocking calls: the shutdown's own cleanup must be able to run."""
        ...


class Lifecycle:
    """The real pacer: a threading.Event for the stop, time.monotonic for the clock."""

    def __init__(
        self,
        *,
        slice_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._slice = slice_seconds
        self._clock = clock
        self._last_beat = clock()
        self._stop_reason = ""

    @property
    def stop_event(self) -> threading.Event:
        """Set once a stop is requested; tasks and subprocess runners watch it."""
        return self._stop

    @property
    def cancel_event(self) -> threading.Event:
        """Set from a stop request until cleanup starts: running adb commands are killed."""
        return self._cancel

    @property
    def stop_reason(self) -> str:
        """Why the stop was requested ("" while running)."""
        return self._stop_reason

    @property
    def last_beat(self) -> float:
        """When the main loop last turned, on this lifecycle's clock."""
        return self._last_beat

    def request_stop(self, reason: str) -> None:
        """Ask the main loop to stop; safe from a signal handler and from any thread."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()
            self._cancel.set()

    def enter_cleanup(self) -> None:
        """Let the shutdown's own adb and Appium calls run to their end."""
        self._cancel.clear()

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return self._clock()

    def check(self) -> None:
        """Raise StopRequested if a stop was requested."""
        if self._stop.is_set():
            raise StopRequested(self._stop_reason)

    def beat(self) -> None:
        """Record that the main loop turned."""
        self._last_beat = self._clock()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` in slices, beating on each; raise StopRequested on a stop."""
        deadline = self._clock() + seconds
        while True:
            self.check()
            self.beat()
            remaining = deadline - self._clock()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self._slice))

    def call(
        self,
        func: Callable[[], T],
        *,
        name: str,
        deadline: float | None = None,
        abandon: Callable[[], str | None] | None = None,
    ) -> T:
        """Run ``func`` in a helper thread and wait for it while beating and watching for a stop.

        On a stop the helper thread is abandoned (it is a daemon): the worker is exiting, and its
        shutdown quits the session and disconnects adb, which ends whatever the thread still does.
        The beat goes on only until ``deadline`` (seconds): a hung call must not keep ``/livez``
        green for the Appium client's full timeout. Past it, the thread is abandoned and
        CallTimedOut raised; the caller then tears the session down, which ends the thread.
        ``abandon``, asked on every slice, does the same before the deadline when it names a
        reason (the attempt was superseded, or its lease ran out).
        """
        outcome: list[T] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def target() -> None:
            try:
                outcome.append(func())
            except BaseException as exc:  # handed over to the caller's thread below
                failure.append(exc)
            finally:
                done.set()

        self.check()
        ends = None if deadline is None else self._clock() + deadline
        threading.Thread(target=target, name=f"worker-{name}", daemon=True).start()
        while not done.wait(self._slice):
            self.beat()
            if self._stop.is_set():
                log.info("Abandoned %s: the worker is stopping", name)
                raise StopRequested(self._stop_reason)
            if ends is not None and self._clock() >= ends and not done.is_set():
                log.warning("Abandoned %s: it passed its deadline of %g s", name, deadline)
                raise CallTimedOut(f"{name} passed its deadline of {deadline:g} s")
            why = abandon() if abandon is not None else None
            if why is not None and not done.is_set():
                log.warning("Abandoned %s: %s", name, why)
                raise CallTimedOut(f"{name} was stopped: {why}", abandoned=why)
        self.beat()
        if failure:
            raise failure[0]
        return outcome[0]


def call_with_deadline(func: Callable[[], object], *, seconds: float, name: str) -> bool:
    """Run a cleanup call for at most ``seconds``; True if it finished (its errors are logged)."""
    done = threading.Event()

    def target() -> None:
        try:
            func()
        except Exception:  # cleanup is best effort: the worker is exiting either way
            log.exception("Could not %s", name)
        finally:
            done.set()

    threading.Thread(target=target, name=f"worker-cleanup-{name}", daemon=True).start()
    if done.wait(seconds):
        return True
    log.warning("Gave up waiting to %s after %g s", name, seconds)
    return False
