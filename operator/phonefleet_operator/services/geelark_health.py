"""Whether Geelark answers: every HTTP call the operator's Geelark client makes, as it went.

The health endpoint reports it (a detail, not a failure: restarting the operator does not bring
Geelark back, see docs/reconcile.md) and so could any metric. A call counts as answered when
Geelark replied, whatever it replied ("not found", "not ready" and "busy" are answers); it counts
as failed when Geelark could not be reached, timed out, failed or refused our credentials.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from phonefleet_operator.errors import GeelarkAuthError, GeelarkUnavailable, PhonefleetError
from phonefleet_operator.geelark import GeelarkClient
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["GeelarkHealth", "RecordedGeelarkClient"]

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


class RecordedGeelarkClient(GeelarkClient):
    """The Geelark client, each of its calls (with its retries) recorded in a GeelarkHealth.

    Recorded here, at the one method every request goes through, so that answers served from
    the inventory's cache or a fresh listing do not pass for Geelark answering.
    """

    def __init__(self, settings: GeelarkSettings, health: GeelarkHealth, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.health = health

    async def call(self, path: str, body: Mapping[str, Any]) -> Any:
        """The call, as GeelarkClient makes it."""
        return await self.health.record(super().call(path, body))
