"""A replica that lost the Lease does nothing more once another replica may hold it
(leadership.py's ``_lead`` with the Replica's fence, fence.py).

A standby may take the Lease over ``lease_duration_seconds`` after the last renewal began (its
clock of the record starts no earlier). The holder notices the loss ``lease_renew_deadline_seconds``
after that renewal: from then on its API writes and Geelark changes are refused, kopf is asked
to stop, cancelled half-way through what is left, and has ended by the takeover. Before, kopf
got 20 s after the loss was noticed, and a pass in flight went on writing through the replica's
API caller for about 15 s beside the new holder. On looptime's virtual clock, with the real
ApiCaller over a client method that records when each write reached the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from kubernetes import client
from loop_order import let_virtual_time_pass, loop_caught_up

from phonefleet_operator import leadership
from phonefleet_operator.errors import KubernetesUnavailable, ReplicaStopping
from phonefleet_operator.fence import Fence
from phonefleet_operator.k8s.api import ApiCaller
from phonefleet_operator.main import InlineExecutor
from phonefleet_operator.settings import OperatorSettings
from phonefleet_operator.waiting import within

pytestmark = pytest.mark.looptime

SETTINGS = OperatorSettings(
    lease_duration_seconds=15, lease_renew_deadline_seconds=10, lease_retry_seconds=2
)


class Lock:
    """The Lease as one replica sees it: each renewal takes ``answer_seconds`` to be answered;
    the first ``renewals`` succeed, then each fails, or finds ``taken_by`` holding it."""

    namespace, name, identity = "phonefleet-system", "phonefleet-operator", "me"

    def __init__(self, renewals: int, *, answer_seconds: float = 1.0, taken_by: str = "") -> None:
        self.renewals = renewals
        self.answer_seconds = answer_seconds
        self.taken_by = taken_by
        self.asked_at: list[float] = []
        """When each successful renewal was asked: the record it wrote is newer."""
        self.observed_holder: str | None = "me"
        self.released = False

    async def try_acquire_or_renew(self) -> bool:
        asked = asyncio.get_running_loop().time()
        await let_virtual_time_pass(self.answer_seconds)
        if len(self.asked_at) < self.renewals:
            self.asked_at.append(asked)
            return True
        if self.taken_by:
            self.observed_holder = self.taken_by
            return False
        raise KubernetesUnavailable("Kubernetes API call replace_namespaced_lease failed: 503")

    async def release(self) -> None:
        self.released = True

    def takeover(self) -> float:
        """The earliest loop time at which a standby may hold the Lease."""
        return self.asked_at[-1] + SETTINGS.lease_duration_seconds


class Answer:
    """An empty response, as the client gives it with _preload_content=False."""

    data = b""

    def release_conn(self) -> None:
        """Nothing to release."""


class ApiServer:
    """Records the loop time at which each write reached it (called in the pool's thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writes: list[float] = []
        self.reads = 0

    def create_namespaced_pod(self, *_: Any, **__: Any) -> Answer:
        self.writes.append(self.loop.time())
        return Answer()

    def read_namespaced_pod(self, *_: Any, **__: Any) -> Answer:
        self.reads += 1
        return Answer()


@pytest.fixture
async def caller() -> AsyncIterator[ApiCaller]:
    """The Replica's API caller and its fence, as Replica.create makes them; its calls run
    inline, where its pool's thread would run them: a thread's real time would let looptime
    move the virtual clock while a call is under way."""
    api = ApiCaller(client.ApiClient(), 2, fence=Fence())
    pool = api._pool
    api._pool = InlineExecutor()  # type: ignore[assignment]
    yield api
    api._pool = pool
    api.close()


def stubborn_kopf(
    caller: ApiCaller, server: ApiServer, ended: list[float]
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """kopf at its worst: a pass that writes once a second and keeps at it through the stop
    and through every error (a retrying loop, a clean-up that hangs); only cancellation ends it."""

    async def operator(stop: asyncio.Event) -> None:
        try:
            while True:
                with contextlib.suppress(Exception):  # the worst case: it ignores refusals
                    await caller(server.create_namespaced_pod)
                await let_virtual_time_pass(1)
        finally:
            ended.append(asyncio.get_running_loop().time())

    return operator


async def lead(lock: Lock, caller: ApiCaller, operator: Any) -> int:
    code: int = await within(
        leadership._lead(lock, SETTINGS, operator, caller.fence, 0.0),  # type: ignore[arg-type]
        600,
    )
    return code


async def test_no_write_reaches_the_api_server_once_a_standby_may_hold_the_lease(
    caller: ApiCaller,
) -> None:
    """The overlap: the holder's renewals fail; a pass that never stops by itself writes
    through the replica's API caller. No write lands at or after the moment a standby may
    take the Lease (the last renewal's ask plus the lease's duration), and the operator has
    ended by then. Before: writes went on until 20 s after the loss was noticed."""
    server = ApiServer(asyncio.get_running_loop())
    lock = Lock(renewals=3)
    ended: list[float] = []

    code = await lead(lock, caller, stubborn_kopf(caller, server, ended))

    takeover = lock.takeover()
    assert code == 1
    assert not lock.released  # lost, not given up
    assert [t for t in server.writes if t < lock.asked_at[-1]]  # it did work while it held it
    assert [t for t in server.writes if t >= takeover] == []
    assert len(ended) == 1
    assert ended[0] < takeover
    # Nothing was written after the loss was noticed either (at the renew deadline).
    assert max(server.writes) <= lock.asked_at[-1] + SETTINGS.lease_renew_deadline_seconds


async def test_a_lease_someone_else_holds_now_fences_at_once(
    caller: ApiCaller, caplog: pytest.LogCaptureFixture
) -> None:
    """A renewal finds another replica holding the Lease (a forced write, a skewed peer):
    that replica may work already, so the fence closes at that answer, not after the renew
    deadline."""
    server = ApiServer(asyncio.get_running_loop())
    lock = Lock(renewals=2, taken_by="other")
    ended: list[float] = []

    code = await lead(lock, caller, stubborn_kopf(caller, server, ended))

    seen_taken = lock.asked_at[-1] + SETTINGS.lease_retry_seconds + 2 * lock.answer_seconds
    assert code == 1
    assert [t for t in server.writes if t > seen_taken] == []
    assert len(ended) == 1
    assert ended[0] <= seen_taken
    assert "the operator is cancelled at once" in caplog.text
    assert "did not end within" not in caplog.text  # its cancellation was waited for


async def test_a_kopf_that_stops_when_asked_stops_gracefully_and_reads_still_pass(
    caller: ApiCaller, caplog: pytest.LogCaptureFixture
) -> None:
    """kopf stops by itself, its passes ending on the refusal (ReplicaStopping, not a fault
    of theirs); admission's reads still go through the fenced caller; the log says how long
    the stop took and which calls were refused."""
    caplog.set_level(logging.INFO, "phonefleet_operator.leadership")
    server = ApiServer(asyncio.get_running_loop())
    lock = Lock(renewals=2)
    refusals: list[str] = []

    async def operator(stop: asyncio.Event) -> None:
        while True:
            try:
                await caller(server.create_namespaced_pod)
            except ReplicaStopping as refused:
                refusals.append(str(refused))
                await stop.wait()
                return
            await let_virtual_time_pass(1)

    code = await lead(lock, caller, operator)

    assert code == 1
    assert refusals == [
        "Refused create_namespaced_pod: this replica lost Lease "
        "phonefleet-system/phonefleet-operator and is stopping (another replica may hold it)"
    ]
    await caller(server.read_namespaced_pod)  # admission reads on until the process exits
    assert server.reads == 1
    assert "The operator stopped" in caplog.text
    assert "did not stop" not in caplog.text
    assert "Refused 1 calls after losing the Lease: create_namespaced_pod x1" in caplog.text


async def test_a_write_queued_before_the_loss_is_refused_when_its_turn_comes() -> None:
    """The fence is checked where the call would leave the process (the pool's thread), so a
    write that waited for a thread while the fence closed is not made."""
    server = ApiServer(asyncio.get_running_loop())
    release = threading.Event()
    caller = ApiCaller(client.ApiClient(), 1, fence=Fence())

    def read_namespaced_pod(*_: Any, **__: Any) -> Answer:  # holds the only thread
        release.wait(10)
        return Answer()

    try:
        busy = asyncio.ensure_future(caller(read_namespaced_pod))
        queued = asyncio.ensure_future(caller(server.create_namespaced_pod))
        await loop_caught_up()
        caller.fence.close("this replica lost Lease x/y and is stopping")
        release.set()
        await busy
        with pytest.raises(ReplicaStopping, match="create_namespaced_pod"):
            await queued
    finally:
        release.set()
        caller.close()
    assert server.writes == []
    assert caller.fence.refused() == {"create_namespaced_pod": 1}
