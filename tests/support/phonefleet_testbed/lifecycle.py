"""What every long-lived part of the test bed shares: ``with part:`` starts it, and stops it
after the block whatever happened there."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["StartStop"]


class StartStop:
    """A part with ``start()`` and ``stop()``, used as a context manager; ``stop()`` must be
    safe to call on a part that did not (fully) start."""

    def start(self) -> object:
        """Start the part and return once it serves."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop whatever the part started."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
