"""A list-then-watch of one collection in a thread of its own, that learns deletions on relist.

kopf relists a collection after a watch gap (a lost connection, a resourceVersion the API server
no longer has: 410 Gone) and reports what the list holds, but not what is missing from it: an
object deleted during the gap is never reported. This watch, like client-go's informers, keeps the
key and resourceVersion of every object it reported, and on each relist reports as DELETED every
kept object the list no longer holds (with the last state it kept of it), as MODIFIED every object
whose resourceVersion changed, as ADDED the new ones, and nothing for the rest. Its consumers can
then trust their views without reading the API server now and then to catch a missed deletion.
Objects are delivered without ``metadata.managedFields`` (nothing here reads them).

The HTTP stream and its JSON decoding run in the thread; the events are handed to the event loop
in the order the API server sent them, in batches (``k8s/handoff.py``: one wake-up of the loop for
all the events that arrive before it takes them).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator.k8s.api import _plain_json, fault_reason, load_api_client
from phonefleet_operator.k8s.handoff import Handoff

__all__ = [
    "Change",
    "KeptState",
    "ListWatch",
    "ObjectWatch",
    "WatchClient",
    "custom_object_lists",
    "key_of",
    "metadata_only",
    "slim",
    "stop_all",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
#: What one list or watch call of the client does: its keyword arguments are the API's
#: (``watch``, ``resource_version``, ``_continue``, ``limit``, ``timeout_seconds``, ...).
ListWatch = Callable[..., Any]
Deliver = Callable[[str, Obj], None]

_GONE = 410
_PAGE = 500
_MAX_BACKOFF = 30.0
_MIN_CYCLE = 1.0


def key_of(obj: Mapping[str, Any]) -> Key:
    """(namespace, name); the namespace is empty for cluster-scoped objects."""
    metadata = obj["metadata"]
    return str(metadata.get("namespace") or ""), str(metadata["name"])


def metadata_only(obj: Mapping[str, Any]) -> Obj:
    """The identity and owners of an object: what a consumer needs to act on its deletion."""
    metadata = obj["metadata"]
    kept = ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "labels")
    return {"metadata": {k: metadata[k] for k in kept if k in metadata}}


@dataclass(frozen=True)
class Change:
    """One event as the consumer gets it: ADDED, MODIFIED or DELETED, and the object."""

    type: str
    object: Obj


class KeptState:
    """What the watch last reported of each object: its resourceVersion and a small copy.

    ``replace`` turns a full list into the changes since the last report, as client-go's
    ``Replace`` does: deletions learned on relist included. Used by one thread only.
    """

    def __init__(self, keep: Callable[[Obj], Obj] = metadata_only) -> None:
        self._keep = keep
        self._objects: dict[Key, tuple[str, Obj]] = {}

    def apply(self, event_type: str, obj: Obj) -> Change | None:
        """Record one watch event; the change to report (None: nothing new to report)."""
        key = key_of(obj)
        if event_type == "DELETED":
            self._objects.pop(key, None)
            return Change("DELETED", obj)
        version = str(obj["metadata"].get("resourceVersion", ""))
        known = self._objects.get(key)
        if known is not None and known[0] == version:
            return None
        self._objects[key] = (version, self._keep(obj))
        return Change("ADDED" if known is None else "MODIFIED", obj)

    def replace(self, items: list[Obj]) -> list[Change]:
        """A full list: report what is new, changed or gone since the last report."""
        listed = {key_of(item) for item in items}
        changes = [
            Change("DELETED", kept)
            for key, (_, kept) in list(self._objects.items())
            if key not in listed
        ]
        for key in [key for key in self._objects if key not in listed]:
            del self._objects[key]
        for item in items:
            change = self.apply("ADDED", item)
            if change is not None:
                changes.append(change)
        return changes

    def __len__(self) -> int:
        return len(self._objects)


class WatchClient:
    """A Kubernetes client of the watches' own: each watch holds a connection for minutes,
    which the pool of the API threads (sized for them) would otherwise lack."""

    def __init__(self, connections: int, kubeconfig: str | None) -> None:
        self.api_client = load_api_client(connections, kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def close(self) -> None:
        """Close its connections."""
        self.api_client.close()  # type: ignore[no-untyped-call]


def custom_object_lists(
    custom: Any, group: str, version: str, plural: str, *, kind: str, namespaces: tuple[str, ...]
) -> list[tuple[str, ListWatch]]:
    """The named list-and-watch calls of one custom resource through ``custom`` (a
    ``CustomObjectsApi``): one per namespace when the operator serves a list of them, else one
    across the cluster ("PhoneJobs in farm", "PhoneJobs")."""
    if not namespaces:
        return [
            (kind, functools.partial(custom.list_cluster_custom_object, group, version, plural))
        ]
    return [
        (
            f"{kind} in {namespace}",
            functools.partial(
                custom.list_namespaced_custom_object, group, version, namespace, plural
            ),
        )
        for namespace in namespaces
    ]


class _Expired(Exception):
    """The resourceVersion to resume from is gone (410): list again."""


class _LoopClosed(Exception):
    """The event loop the changes go to has closed: the watch ends."""


class ObjectWatch:
    """Lists then watches one collection in a daemon thread, for as long as it runs.

    ``call`` is the client's list method bound to the collection (e.g. ``functools.partial(
    core.list_pod_for_all_namespaces, label_selector=...)``); ``deliver(type, obj)`` runs on
    ``loop`` for each change. A relist happens at start, after 410 Gone, and after a failure
    (with a back-off); a watch the API server ended normally resumes from the last
    resourceVersion (bookmarks keep it current) without a list.
    """

    def __init__(
        self,
        name: str,
        call: ListWatch,
        deliver: Deliver,
        *,
        keep: Callable[[Obj], Obj] = metadata_only,
        server_timeout: int = 300,
    ) -> None:
        self.name = name
        self._call = call
        self._deliver = deliver
        self._state = KeptState(keep)
        self._server_timeout = server_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self._version = ""
        self._handoff: Handoff | None = None
        self._held: list[Change] = []  # found after a stop, delivered at the next start
        self.lists = 0  # how many full lists were made (1 + relists)

    # ------------------------------------------------------------ lifecycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the thread; changes are delivered on ``loop``.

        Started again after ``stop``, once its thread has ended, it resumes from the last
        resourceVersion, and first delivers the changes the stop held back (found and recorded
        by the thread, not delivered: the consumer would never hear of them otherwise). While
        the thread still runs it raises RuntimeError: a second thread would share the first's
        kept objects and version."""
        if self.alive():
            raise RuntimeError(
                f"the watch of {self.name} still runs: start it again once its thread has ended"
            )
        self._stop.clear()
        if self._handoff is None or self._handoff.loop is not loop:
            self._handoff = Handoff(loop)
        held, self._held = self._held, []
        self._handoff.post_first([functools.partial(self._deliver_safely, c) for c in held])
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.name}", daemon=True)
        self._thread.start()

    def signal(self) -> None:
        """Tell the thread to end (interrupting a blocked read) without waiting for it. Called
        on the loop, it hands nothing more over from then on, even from a call in flight."""
        self._stop.set()
        response = self._response
        if response is not None:
            _interrupt(response)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the thread to end; True when it has (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive()

    def stop(self, timeout: float = 5.0) -> None:
        """``signal``, then ``join``: blocks up to ``timeout`` (``stop_all`` waits off the loop)."""
        self.signal()
        self.join(timeout)

    def alive(self) -> bool:
        """The thread runs (it only ends when stopped)."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        failures = 0
        started = 0.0
        while not self._stop.is_set():
            # At most one list-or-watch cycle a second, whatever the API server answers (a
            # watch that ends at once, a 410 right after a list): the loop stays bounded.
            pause = _MIN_CYCLE - (time.monotonic() - started)
            if pause > 0 and self._stop.wait(pause):
                return
            started = time.monotonic()
            try:
                self._cycle()
                failures = 0
            except _LoopClosed:
                # Nobody stopped this watch before its event loop closed (a bug of its owner):
                # what it finds can no longer be delivered, so it ends instead of listing again.
                log.info("Ended the watch of %s: its event loop has closed", self.name)
                self._stop.set()
                return
            except _Expired:
                log.info("Watch of %s expired (410 Gone): listing again", self.name)
                self._version = ""
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                if self._stop.is_set():
                    return
                failures += 1
                delay = min(_MAX_BACKOFF, 2.0 ** min(failures, 5)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
                log.warning(
                    "Watch of %s failed (%s): trying again in %.1f s",
                    self.name,
                    _describe(error),
                    delay,
                )
                if failures >= 3:
                    self._version = ""  # a list after repeated failures: start from the truth
                self._stop.wait(delay)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("Watch of %s failed unexpectedly: listing again in 5 s", self.name)
                self._version = ""
                self._stop.wait(5.0)

    def _cycle(self) -> None:
        """List if there is no resourceVersion to resume from, then watch until the end."""
        try:
            if not self._version:
                self._relist()
            if not self._stop.is_set():
                self._watch()
        except ApiException as error:
            if error.status == _GONE:  # a list's continue token or a watch's version expired
                raise _Expired from None
            raise

    def _relist(self) -> None:
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = _plain_json(self._call, limit=_PAGE, _continue=token, _request_timeout=60) or {}
            items.extend(slim(item) for item in page.get("items") or ())
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        version = str((page.get("metadata") or {}).get("resourceVersion", ""))
        changes = self._state.replace(items)
        self.lists += 1
        for change in changes:
            self._hand_over(change)
        self._version = version

    def _watch(self) -> None:
        timeout = self._server_timeout + random.randint(0, self._server_timeout // 5)  # noqa: S311
        response = self._call(
            watch=True,
            resource_version=self._version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _preload_content=False,
            _request_timeout=(10, timeout + 30),
        )
        self._response = response
        try:
            if self._stop.is_set():
                # stop() came while the call was in flight and found no response to interrupt:
                # reading it would block until the API server ends the watch (minutes).
                return
            for line in _lines(response):
                if self._stop.is_set():
                    return
                self._handle(json.loads(line))
        finally:
            self._response = None
            response.release_conn()

    def _handle(self, event: Obj) -> None:
        event_type, obj = event.get("type"), event.get("object") or {}
        if event_type == "ERROR":
            if obj.get("code") == _GONE:
                raise _Expired
            raise ValueError(f"watch error: {obj.get('code')} {obj.get('message', '')}")
        version = slim(obj).get("metadata", {}).get("resourceVersion")
        if event_type == "BOOKMARK":
            self._version = str(version)
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            return
        change = self._state.apply(str(event_type), obj)
        if version:
            self._version = str(version)
        if change is not None:
            self._hand_over(change)

    def _hand_over(self, change: Change) -> None:
        assert self._handoff is not None  # noqa: S101 - started
        try:
            self._handoff.post(functools.partial(self._deliver_safely, change))
        except RuntimeError:
            if self._handoff.loop.is_closed():
                raise _LoopClosed from None
            raise

    def _deliver_safely(self, change: Change) -> None:
        if self._stop.is_set():
            # Stopped (on this loop) after the thread posted it: its consumers may be closed.
            self._held.append(change)
            return
        try:
            self._deliver(change.type, change.object)
        except Exception:
            log.exception("Handling a %s event of %s failed", change.type, self.name)

    def __len__(self) -> int:
        return len(self._state)


async def stop_all(watches: Iterable[ObjectWatch], seconds: float = 5.0) -> list[str]:
    """Stop ``watches``: signal every one on the loop (nothing more is handed over), then wait
    for their threads together, off the loop, ``seconds`` in all; the names of those still
    running after it (logged; their daemon threads end with the process)."""
    watches = list(watches)
    for watch in watches:
        watch.signal()

    def join_all() -> list[str]:
        deadline = time.monotonic() + seconds
        return [
            watch.name for watch in watches if not watch.join(max(0.0, deadline - time.monotonic()))
        ]

    running = await asyncio.get_running_loop().run_in_executor(None, join_all)
    if running:
        log.warning(
            "Watches still running %.0f s after they were stopped: %s",
            seconds,
            ", ".join(running),
        )
    return running


def slim(obj: Obj) -> Obj:
    """``obj`` without ``metadata.managedFields``, which no consumer reads: half of a binding's
    or a pod's JSON (1.9 of 3.7 KB, 5.1 of 10.9 KB), parsed and copied by every pass and kept
    in memory per object otherwise. Dropped here, in the watch thread, off the event loop."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch response, as they arrive.

    Only each new chunk is searched; the start of a line is kept as the chunks it came in and
    joined once its end arrives: a line of a megabyte in a thousand chunks is copied once, not
    once per chunk."""
    parts: list[bytes] = []  # the line in progress
    for chunk in response.stream(amt=None, decode_content=False):
        *complete, rest = chunk.split(b"\n")
        if complete:
            complete[0] = b"".join([*parts, complete[0]])
            parts = []
            yield from (line for line in complete if line.strip())
        if rest:
            parts.append(rest)
    pending = b"".join(parts)
    if pending.strip():
        yield pending


def _interrupt(response: Any) -> None:
    """Unblock a read in progress on another thread (urllib3 2.3+ has shutdown())."""
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        else:
            response.close()
    except Exception:  # best effort: the thread may be between reads
        log.debug("Interrupting a watch response failed", exc_info=True)


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiException):
        if error.status == _GONE:
            return "410 Gone"
        return f"{error.status} {error.reason}"
    return fault_reason(error)  # "connection refused", not the class name
