"""Watching objects from a test: every change the API server reports, in order, not snapshots.

A test that claims "never" (a holder never left Running, a pod was never replaced) must see every
state an object passed through; polling with ``kubectl get`` can miss a Conflict that lasted a
second. :class:`Watch` runs the real ``kubectl get --watch`` in the background: kubectl lists the
objects, then watches from the list's resourceVersion, so no change after the list is missed.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.waiting import wait_for

__all__ = ["Watch", "WatchEvent", "Watched"]


@dataclass(frozen=True)
class WatchEvent:
    """One change: ADDED, MODIFIED or DELETED, and the object as it was then."""

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
    """``kubectl get KIND --watch`` in the background, collecting each event in order.

    Use as a context manager; entering returns once kubectl has listed the objects that exist
    (at least one must exist: the list is how the watch shows it is established). ``selectors``
    are kubectl's own arguments, such as ``--selector=app=x`` or ``--field-selector=...``.
    ``on_event`` runs in the reader thread as each event arrives, before the next is read: for
    what must be looked at at that moment (another system's state when a change was seen).
    """

    def __init__(
        self,
        plane: ControlPlane,
        kind: str,
        namespace: str | None = None,
        *selectors: str,
        on_event: Callable[[WatchEvent], None] | None = None,
    ) -> None:
        scope = ["-n", namespace] if namespace else []
        self._args = [
            str(plane.binaries.path("kubectl")),
            f"--kubeconfig={plane.kubeconfig}",
            "get",
            kind,
            *scope,
            *selectors,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ]
        self._kind = kind
        self._on_event = on_event
        self._events: list[WatchEvent] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False

    def __enter__(self) -> Watch:
        self._process = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self._reader = threading.Thread(target=self._read, name=f"watch-{self._kind}", daemon=True)
        self._reader.start()
        wait_for(
            lambda: self.events() or self._ended(),
            30,
            message=f"kubectl to list the {self._kind} it watches",
        )
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> list[WatchEvent]:
        """End the watch; return every event it saw (they stay available afterwards)."""
        events = self.events()
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        return events

    def events(self, name: str | None = None) -> list[WatchEvent]:
        """The events so far, of one object when ``name`` is given.

        Raises if kubectl ended on its own: a watch that stopped early would make "never"
        assertions pass on too little.
        """
        if self._ended():
            assert self._process is not None
            stderr = self._process.stderr.read() if self._process.stderr else ""
            raise AssertionError(f"kubectl watch of {self._kind} ended early: {stderr}")
        with self._lock:
            return [e for e in self._events if name is None or e.name == name]

    def wait_for_event(
        self, matches: Callable[[WatchEvent], bool], timeout: float, what: str
    ) -> WatchEvent:
        """The first event (received so far or later) that ``matches``, within ``timeout``."""
        return wait_for(
            lambda: next((e for e in self.events() if matches(e)), None),
            timeout,
            interval=0.05,
            message=f"{what} ({self._kind} watched)",
        )

    def _ended(self) -> bool:
        """kubectl exited although nobody stopped it."""
        return not self._stopping and self._process is not None and self._process.poll() is not None

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for document in _documents(self._process.stdout):
            event = WatchEvent(type=document["type"], object=document["object"])
            if self._on_event is not None:
                self._on_event(event)
            with self._lock:
                self._events.append(event)


class Watched:
    """One :class:`Watch` per kind of a namespace's objects, each started (``start``) once an
    object of its kind exists, all ended by ``close``.

    ``first`` waits for the first state of an object that passes a check, among those seen or
    to come: a state that lasts a second (a retry's backoff, an attempt being fenced, a phone
    booting) is not missed, as a poll with ``kubectl get`` can miss it on a loaded machine.
    """

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self._plane = plane
        self._namespace = namespace
        self._watches: dict[str, Watch] = {}

    def __enter__(self) -> Watched:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self, kind: str) -> None:
        """Watch ``kind`` from now on (at least one must exist); a second call does nothing."""
        if kind not in self._watches:
            self._watches[kind] = Watch(self._plane, kind, self._namespace).__enter__()

    def states(self, kind: str, name: str | None) -> list[dict[str, Any]]:
        """Every state of the object (of every object, without ``name``) seen so far, in
        order."""
        assert kind in self._watches, f"{kind} are not watched: start() them first"
        return [e.object for e in self._watches[kind].events(name)]

    def first(
        self,
        kind: str,
        name: str | None,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 120,
    ) -> dict[str, Any]:
        """The object as it was when it first passed ``check`` (without ``name``: the first
        object that did), waiting up to ``timeout``."""

        def reached() -> dict[str, Any] | None:
            return next((o for o in self.states(kind, name) if check(o)), None)

        def describe() -> str:
            seen = self.states(kind, name)
            last = seen[-1].get("status") if seen else None
            return f"{what}; {kind}/{name or '*'} last seen with status {last}"

        found: dict[str, Any] = wait_for(reached, timeout, interval=0.05, message=describe)
        return found

    def close(self) -> None:
        """End every watch."""
        for watch in self._watches.values():
            watch.stop()


def _documents(stream: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON documents kubectl prints one after another (each spans several lines)."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in stream:
        buffer += line
        while buffer.strip():
            text = buffer.lstrip()
            try:
                document, end = decoder.raw_decode(text)
            except json.JSONDecodeError:
                break  # the document is not complete yet
            buffer = text[end:]
            yield document
