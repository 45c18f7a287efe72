"""Whether Geelark answers: every call the operator makes through its ports, as it went.

The health endpoint reports it (a detail, not a failure: restarting the operator does not bring
Geelark back, see docs/reconcile.md) and so could any metric. A call counts as answered when
Geelark replied, whatever it replied ("not found", "not ready" and "busy" are answers); it counts
as failed when Geelark could not be reached, timed out, failed or refused our credentials.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from phonefleet_operator.errors import GeelarkAuthError, GeelarkUnavailable, PhonefleetError
from phonefleet_operator.geelark import AdbEndpoint, Phone, PhoneStatus, StartResult
from phonefleet_operator.services.ports import PhoneDirectory, PhonePower

__all__ = ["GeelarkHealth", "WatchedDirectory", "WatchedPower"]

T = TypeVar("T")

# Fault texts in the health report are cut to this length (they are already free of secrets).
_MESSAGE_CHARS = 200


class GeelarkHealth:
    """The outcome of the latest Geelark call, and since when calls have been failing."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._answered_at: float | None = None
        self._failing_since: float | None = None
        self._last_error: str | None = None

    def answered(self) -> None:
        """Geelark replied."""
        self._answered_at = self._clock()
        self._failing_since = None
        self._last_error = None

    def failed(self, error: Exception) -> None:
        """Geelark could not be reached, or refused our credentials."""
        if self._failing_since is None:
            self._failing_since = self._clock()
        self._last_error = f"{type(error).__name__}: {error}"[:_MESSAGE_CHARS]

    def summary(self) -> str:
        """One line for the health endpoint."""
        now = self._clock()
        if self._failing_since is not None:
            return (
                f"unreachable for {now - self._failing_since:.0f} s "
                f"(last error: {self._last_error})"
            )
        if self._answered_at is None:
            return "not asked yet"
        return f"ok (answered {now - self._answered_at:.0f} s ago)"

    async def record(self, call: Awaitable[T]) -> T:
        """Await a Geelark call and note how it went."""
        try:
            result = await call
        except (GeelarkUnavailable, GeelarkAuthError) as error:
            self.failed(error)
            raise
        except PhonefleetError:
            self.answered()  # a refusal Geelark sent ("not found", "busy") is an answer
            raise
        self.answered()
        return result


class WatchedDirectory:
    """A phone directory whose calls are recorded in a :class:`GeelarkHealth`."""

    def __init__(self, directory: PhoneDirectory, health: GeelarkHealth) -> None:
        self._directory = directory
        self._health = health

    async def resolve(self, reference: str) -> Phone:
        """The phone, as the wrapped directory resolves it."""
        return await self._health.record(self._directory.resolve(reference))


class WatchedPower:
    """Phone power operations whose calls are recorded in a :class:`GeelarkHealth`."""

    def __init__(self, power: PhonePower, health: GeelarkHealth) -> None:
        self._power = power
        self._health = health

    async def status(self, phone_id: str) -> PhoneStatus:
        """The phone's power state."""
        return await self._health.record(self._power.status(phone_id))

    async def start(self, phone_id: str) -> StartResult:
        """Start the phone."""
        return await self._health.record(self._power.start(phone_id))

    async def stop(self, phone_id: str) -> None:
        """Stop the phone."""
        await self._health.record(self._power.stop(phone_id))

    async def enable_adb(self, phone_id: str) -> None:
        """Turn ADB on."""
        await self._health.record(self._power.enable_adb(phone_id))

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        """The phone's ADB endpoint."""
        return await self._health.record(self._power.adb_endpoint(phone_id))

    def poll_interval(self, phones: int) -> float:
        """As the wrapped power's (no call)."""
        return self._power.poll_interval(phones)
