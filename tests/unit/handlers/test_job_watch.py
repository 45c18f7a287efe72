"""The PhoneJob watch reports a job deleted during a watch gap, so the jobs view forgets it.

The API server is played by a collection that answers the client's list and watch calls as the
real one does (a page of JSON, a stream of JSON lines, ``ERROR 410`` for a version it no longer
has). kopf, which watched PhoneJobs before, lists again after a 410 too, but reports only what
the list holds: the deleted job stayed in the view, Running, and held its binding (no
replacement pod, no stop of its phone) and every job queued behind it, for good.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from phonefleet_operator.handlers.jobs import job_watches
from phonefleet_operator.k8s.watch import stop_all
from phonefleet_operator.services.jobs.observed import ObservedJobs
from phonefleet_operator.settings import OperatorSettings

Obj = dict[str, Any]
DEADLINE_SECONDS = 20.0


def running_job(name: str, version: int) -> Obj:
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneJob",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "resourceVersion": str(version),
            "generation": 1,
            "creationTimestamp": "2026-11-28T11:00:00Z",
        },
        "spec": {"bindingName": "alpha", "task": "heartbeat"},
        "status": {
            "phase": "Running",
            "attemptCount": 1,
            "attempts": [
                {
                    "number": 1,
                    "id": "a-1",
                    "startTime": "2026-11-28T11:00:01Z",
                    "outcome": "Running",
                }
            ],
        },
    }


class Answer:
    """A list or watch answer as the client gives it with ``_preload_content=False``."""

    def __init__(self, lines: list[Obj], *, before: threading.Event | None = None) -> None:
        self.data = json.dumps(lines[0]).encode() if lines else b"{}"
        self._lines = [json.dumps(line).encode() + b"\n" for line in lines]
        self._before = before
        self._shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        if self._before is not None:
            self._before.wait(DEADLINE_SECONDS)  # the gap: the test deletes the job meanwhile
            yield from self._lines
        self._shut.wait(DEADLINE_SECONDS)  # a watch that stays open until shut

    def shutdown(self) -> None:
        self._shut.set()

    def release_conn(self) -> None:
        """Nothing to release."""


class Gapped:
    """One resource's objects on the API server: the first watch ends with 410 Gone once the gap
    (``gap_over``) is over, as a watch whose version the server no longer has."""

    def __init__(self, plural: str, objects: list[Obj]) -> None:
        self.plural = plural
        self.objects = {obj["metadata"]["name"]: obj for obj in objects}
        self.gap_over = threading.Event()
        self.watches = 0

    def __call__(self, *resource: str, **kwargs: Any) -> Answer:
        assert resource == ("phonefleet.dev", "v1alpha1", self.plural)
        if not kwargs.get("watch"):
            page = {"metadata": {"resourceVersion": "50"}, "items": list(self.objects.values())}
            return Answer([page])
        self.watches += 1
        if self.watches == 1:
            expired = {"type": "ERROR", "object": {"code": 410, "message": "too old"}}
            return Answer([expired], before=self.gap_over)
        return Answer([])


class Deliveries:
    """Wakes the test each time the watch delivers a change (on the loop): it waits for what it
    expects to be delivered, not for time to pass."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def mark(self) -> None:
        self._changed.set()

    async def until(self, check: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                while not check():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


class Seen:
    """The runtime's job service as the watch meets it: the events, applied to the jobs view
    as ``JobService.saw`` applies them (its loops are not what this test is about)."""

    def __init__(self) -> None:
        self.view = ObservedJobs()
        self.events: list[tuple[str, str]] = []
        self.delivered = Deliveries()

    def saw(self, event_type: str, job: Obj) -> None:
        self.events.append((event_type, job["metadata"]["name"]))
        if event_type == "DELETED":
            self.view.gone(job)
        else:
            self.view.saw(job)
        self.delivered.mark()

    def names(self) -> set[str]:
        return {job["metadata"]["name"] for job in self.view.of_binding("ns", "alpha")}


async def test_a_job_deleted_while_the_watch_was_down_leaves_the_jobs_view_on_relist() -> None:
    api = Gapped("phonejobs", [running_job("kept", 10), running_job("deleted", 11)])
    jobs = Seen()
    runtime = SimpleNamespace(jobs=jobs, settings=OperatorSettings())
    client = SimpleNamespace(custom=SimpleNamespace(list_cluster_custom_object=api))
    (watch,) = job_watches(runtime, client, ())  # type: ignore[arg-type]
    watch.start(asyncio.get_running_loop())
    try:
        await jobs.delivered.until(lambda: jobs.names() == {"kept", "deleted"}, "both jobs")
        del api.objects["deleted"]  # kubectl delete pj, while the watch is cut off
        api.gap_over.set()  # the watch resumes: 410 Gone, a relist
        await jobs.delivered.until(lambda: jobs.names() == {"kept"}, "the deleted job gone")
    finally:
        await stop_all([watch])
    assert watch.lists == 2
    assert jobs.events == [("ADDED", "kept"), ("ADDED", "deleted"), ("DELETED", "deleted")]
    assert jobs.view.has_work("ns", "alpha")  # "kept" still runs; nothing else is held


def test_a_job_made_again_under_its_name_for_another_binding_leaves_the_first_binding() -> None:
    """A relist reports a job deleted and made again under the same name as one change of it
    (MODIFIED: same namespace and name, a new version). Made for another binding, it is kept
    under that one only: the first binding no longer counts it as its Running job."""
    view = ObservedJobs()
    view.saw(running_job("post", 10))
    again = running_job("post", 20)
    again["metadata"]["uid"] = "uid-post-2"
    again["spec"]["bindingName"] = "beta"

    view.saw(again)  # the relist's MODIFIED

    assert view.of_binding("ns", "alpha") == []
    assert not view.has_work("ns", "alpha")
    assert [j["metadata"]["uid"] for j in view.of_binding("ns", "beta")] == ["uid-post-2"]
    view.gone(again)
    assert not view.has_work("ns", "beta")
    assert view.of_binding("ns", "beta") == []
