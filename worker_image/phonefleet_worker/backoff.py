"""The delays between recovery attempts: exponential, capped, with a little jitter.

The device session is itself the retry loop (each attempt is a walk through its states), so it
needs delays, not a retrying decorator around one call: hence this small class rather than
tenacity's ``Retrying``. ``random`` is injectable so tests get exact numbers.
"""

from __future__ import annotations

import math
import random as random_module
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """initial, 2*initial, 4*initial, ... up to maximum, each scaled by 1 +/- jitter."""

    def __init__(
        self,
        *,
        initial: float,
        maximum: float,
        jitter: float = 0.2,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if initial < 0 or maximum < initial or not 0 <= jitter < 1:
            raise ValueError("need 0 <= initial <= maximum and 0 <= jitter < 1")
        self._initial = initial
        self._maximum = maximum
        self._jitter = jitter
        self._random = random
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the base, up to the maximum."""
        base = min(self._maximum, math.ldexp(self._initial, min(self._attempt, 64)))
        self._attempt += 1
        spread = 1 + self._jitter * (2 * self._random() - 1)
        return min(self._maximum, base * spread)

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self._attempt = 0
