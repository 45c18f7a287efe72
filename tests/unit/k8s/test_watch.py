"""The list-then-watch reports deletions found on relist, and resumes without a list when it can.

The API server is played by an in-memory collection that answers the client's list and watch
calls as the real one does: pages of JSON, a stream of JSON lines, ``ERROR 410`` for a
resourceVersion it no longer has.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from thread_signals import DEADLINE_SECONDS, Changes, counted_wakeups

from phonefleet_operator.k8s.watch import KeptState, ObjectWatch

Obj = dict[str, Any]


def pod(name: str, version: int, **metadata: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version)} | metadata
    }


class Listed:
    """A list answer as the client gives it with _preload_content=False."""

    def __init__(self, body: Obj) -> None:
        self.data = json.dumps(body).encode()

    def release_conn(self) -> None:
        """Nothing to release."""


class Stream:
    """A watch answer: the given lines, then (``hold``) a stream that stays open until shut."""

    def __init__(self, events: list[Obj], *, hold: bool) -> None:
        self._lines = [json.dumps(e).encode() + b"\n" for e in events]
        self._hold = hold
        self._shut = threading.Event()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        for line in self._lines:  # split across chunks, as TCP may deliver them
            yield line[:7]
            yield line[7:]
        if self._hold:
            self._shut.wait(30)

    def shutdown(self) -> None:
        self._shut.set()

    def release_conn(self) -> None:
        """Nothing to release."""


class Collection:
    """Objects and the watch answers to give, in order; records every call's kind."""

    def __init__(self, objects: list[Obj], version: int, page: int = 2) -> None:
        self.objects = {o["metadata"]["name"]: o for o in objects}
        self.version = version
        self.page = page
        self.watches: list[Callable[[str], Stream]] = []
        self.calls: list[str] = []
        #: Notified on every call and by the tests' callbacks on every change they see.
        self.changes = Changes()

    def __call__(self, **kwargs: Any) -> Any:
        if kwargs.get("watch"):
            self.calls.append(f"watch@{kwargs['resource_version']}")
            self.changes.notify()
            answer = self.watches.pop(0) if self.watches else lambda _: Stream([], hold=True)
            return answer(kwargs["resource_version"])
        self.calls.append("list")
        self.changes.notify()
        names = sorted(self.objects)
        start = int(kwargs.get("_continue") or 0)
        chunk = names[start : start + self.page]
        more = start + self.page < len(names)
        metadata = {"resourceVersion": str(self.version)} | (
            {"continue": str(start + self.page)} if more else {}
        )
        return Listed({"metadata": metadata, "items": [self.objects[n] for n in chunk]})


def test_a_relist_reports_what_changed_and_what_is_gone_and_nothing_else() -> None:
    state = KeptState()
    first = [pod("a", 1), pod("b", 2), pod("c", 3)]
    assert [(c.type, c.object["metadata"]["name"]) for c in state.replace(first)] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
    ]
    changes = state.replace([pod("b", 2), pod("c", 9), pod("d", 10)])
    assert [(c.type, c.object["metadata"]["name"]) for c in changes] == [
        ("DELETED", "a"),
        ("MODIFIED", "c"),
        ("ADDED", "d"),
    ]
    assert len(state) == 3


def test_a_deletion_learned_on_relist_carries_the_last_kept_owners() -> None:
    state = KeptState()
    owner = [{"kind": "PhoneBinding", "uid": "b-1", "controller": True}]
    state.replace([pod("a", 1, uid="p-1", ownerReferences=owner)])
    (gone,) = state.replace([])
    assert gone.type == "DELETED"
    assert gone.object["metadata"]["ownerReferences"] == owner
    assert gone.object["metadata"]["uid"] == "p-1"


def test_a_repeated_event_of_the_same_version_is_not_reported_twice() -> None:
    state = KeptState()
    assert state.apply("ADDED", pod("a", 1)) is not None
    assert state.apply("MODIFIED", pod("a", 1)) is None
    change = state.apply("MODIFIED", pod("a", 2))
    assert change is not None
    assert change.type == "MODIFIED"


async def test_after_410_gone_the_watch_lists_again_and_reports_the_deletions_it_missed() -> None:
    """Watch 1 ends with 410 (the gap): meanwhile a was deleted, b changed, d was added; the
    relist reports exactly that. The events of watch 2 follow in order."""
    api = Collection([pod("a", 1), pod("b", 2), pod("c", 3)], version=3)

    def expired(_: str) -> Stream:
        del api.objects["a"]
        api.objects["b"] = pod("b", 7)
        api.objects["d"] = pod("d", 8)
        api.version = 8
        return Stream(
            [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}], hold=False
        )

    def live(_: str) -> Stream:
        events = [
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
            {"type": "DELETED", "object": pod("c", 10)},
        ]
        return Stream(events, hold=True)

    api.watches = [expired, live]
    seen: list[tuple[str, str]] = []

    def saw(event_type: str, obj: Obj) -> None:
        seen.append((event_type, obj["metadata"]["name"]))
        api.changes.notify()

    watch = ObjectWatch("pods", api, saw)
    watch.start(asyncio.get_running_loop())
    try:
        await api.changes.until(lambda: len(seen) == 7, "seven changes")
    finally:
        watch.stop()
    assert seen == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("DELETED", "a"),
        ("MODIFIED", "b"),
        ("ADDED", "d"),
        ("DELETED", "c"),
    ]
    assert api.calls == ["list", "list", "watch@3", "list", "list", "watch@8"]
    assert watch.lists == 2
    assert not watch.alive()


async def test_a_watch_the_server_ended_resumes_from_the_last_version_without_a_list() -> None:
    api = Collection([pod("a", 1)], version=1)
    api.watches = [
        lambda _: Stream([{"type": "MODIFIED", "object": pod("a", 5)}], hold=False),
        lambda _: Stream(
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}], hold=False
        ),
    ]
    watch = ObjectWatch("pods", api, lambda t, o: None)
    watch.start(asyncio.get_running_loop())
    try:
        await api.changes.until(lambda: "watch@6" in api.calls, "a third watch")
    finally:
        watch.stop()
    assert api.calls == ["list", "watch@1", "watch@5", "watch@6"]


async def test_changes_that_arrive_while_the_loop_is_busy_wake_it_once_and_come_in_order() -> None:
    """A relist of 1,200 objects made while the event loop is blocked: the thread wakes the loop
    once (not once per object), and the loop takes them in order, 500 per turn at most, so its
    other callbacks run between batches."""
    names = [f"p{i:04d}" for i in range(1200)]
    api = Collection([pod(n, 1) for n in names], version=1, page=500)
    reached = threading.Event()

    def held(_: str) -> Stream:  # the relist is handed over by the time the watch is asked
        reached.set()
        return Stream([], hold=True)

    api.watches = [held]
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    all_seen = asyncio.Event()

    def deliver(_: str, obj: Obj) -> None:
        seen.append(obj["metadata"]["name"])
        if len(seen) == len(names):
            all_seen.set()

    # Another callback of the loop: it records how many objects came before each of its runs
    # and schedules itself again (ten runs at most), behind whatever is ready by then.
    turns: list[int] = []

    def bystander() -> None:
        turns.append(len(seen))
        if len(seen) < len(names) and len(turns) < 10:
            loop.call_soon(bystander)

    watch = ObjectWatch("pods", api, deliver)
    try:
        with counted_wakeups(loop) as wakeups:
            watch.start(loop)
            assert reached.wait(10), "the watch thread never finished its relist"
            assert seen == []  # the loop was busy (here) the whole time
            loop.call_soon(bystander)  # behind the hand-over the thread scheduled
            async with asyncio.timeout(DEADLINE_SECONDS):
                await all_seen.wait()
    finally:
        watch.stop()
    assert turns == [500, 1000, 1200]
    assert seen == names
    assert wakeups.count == 1


async def test_objects_come_without_their_managed_fields_from_the_list_and_the_watch() -> None:
    """managedFields are half of a binding's or a pod's JSON and nothing reads them."""
    managed = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]
    api = Collection([pod("a", 1, managedFields=managed, uid="u-a")], version=1)
    api.watches = [
        lambda _: Stream(
            [{"type": "MODIFIED", "object": pod("a", 2, managedFields=managed, uid="u-a")}],
            hold=True,
        )
    ]
    seen: list[Obj] = []

    def saw(_: str, obj: Obj) -> None:
        seen.append(obj)
        api.changes.notify()

    watch = ObjectWatch("pods", api, saw)
    watch.start(asyncio.get_running_loop())
    try:
        await api.changes.until(lambda: len(seen) == 2, "the listed and the watched change")
    finally:
        watch.stop()
    assert [o["metadata"]["resourceVersion"] for o in seen] == ["1", "2"]
    assert all("managedFields" not in o["metadata"] for o in seen)
    assert all(o["metadata"]["uid"] == "u-a" for o in seen)
