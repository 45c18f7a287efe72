"""Continuous observation for tests that claim "never": a real kubectl watch, event by event.

A snapshot taken at the end of a test cannot show that a pod was never replaced or a binding never
left Running in between; a watch sees every change the API server made, in order.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import json_documents

__all__ = ["Watch", "WatchEvent"]


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED or DELETED, and the object as it was then."""

    type: str
    object: dict[str, Any]

    @property
    def name(self) -> str:
        """The object's name."""
        return str(self.object["metadata"]["name"])

    @property
    def uid(self) -> str:
        """The object's uid."""
        return str(self.object["metadata"]["uid"])


class Watch:
    """``kubectl get KIND --watch`` of one namespace (only objects matching the label
    ``selector`` when given), recording every event until closed.

    Use as a context manager; ``events`` is a copy of what arrived so far (the current objects
    first, as ADDED, then every change).
    """

    def __init__(
        self, plane: ControlPlane, kind: str, namespace: str, *, selector: str | None = None
    ) -> None:
        self._what = f"{kind} in {namespace}" + (f" with {selector}" if selector else "")
        self._events: list[WatchEvent] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [
                str(plane.binaries.path("kubectl")),
                f"--kubeconfig={plane.kubeconfig}",
                "get",
                kind,
                "--namespace",
                namespace,
                "--watch",
                "--output-watch-events",
                "--output=json",
                *(["--selector", selector] if selector else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"watch {self._what}", daemon=True)
        self._reader.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def events(self) -> list[WatchEvent]:
        """Every event received so far, in order."""
        with self._lock:
            return list(self._events)

    def wait_for_event(
        self, matches: Callable[[WatchEvent], bool], timeout: float, what: str
    ) -> WatchEvent:
        """The first event (received so far or later) that ``matches``, within ``timeout``."""
        return wait_for(
            lambda: next((e for e in self.events if matches(e)), None),
            timeout,
            interval=0.05,
            message=f"{what} ({self._what})",
        )

    def close(self) -> None:
        """Stop watching; the events received stay available."""
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=10)

    def _read(self) -> None:
        """Record each event kubectl prints, as it arrives."""
        assert self._process.stdout is not None
        for value in json_documents(self._process.stdout):
            with self._lock:
                self._events.append(WatchEvent(str(value["type"]), value["object"]))
