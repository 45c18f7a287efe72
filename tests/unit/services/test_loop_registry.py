"""The loop registry (Wakeups) tells a binding's loop whether its binding is gone: from one list
of every binding, made at most once per period for all loops, and asked for after the loop
registered; a failed list or one too old to judge by concludes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.services.coordination import Wakeups

PERIOD = 60.0


class ApiServer:
    """Lists bindings by uid; counts the lists; fails while ``down``."""

    def __init__(self, *uids: str) -> None:
        self.uids = set(uids)
        self.lists = 0
        self.down = False

    async def list_bindings(self) -> list[Mapping[str, Any]]:
        self.lists += 1
        await asyncio.sleep(0)  # an answer takes a turn of the event loop, as a real one does
        if self.down:
            raise KubernetesUnavailable("Kubernetes API call failed: 503", delay=5)
        return [{"metadata": {"uid": uid}} for uid in sorted(self.uids)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_binding_missing_from_a_later_list_is_gone_and_a_listed_one_is_not() -> None:
    """Both loops registered before the list: the listed binding is there, the other gone."""
    api, wakeups = ApiServer("a"), Wakeups()
    wakeups.register("a")
    wakeups.register("b")
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is True
    assert await wakeups.listed("b", api.list_bindings, PERIOD) is False
    assert api.lists == 1


async def test_a_loop_registered_after_the_list_is_not_judged_by_it() -> None:
    """A binding created after the list was asked for is missing from it, and still exists."""
    clock = Clock()
    api, wakeups = ApiServer("a"), Wakeups(clock=clock)
    wakeups.register("a")
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is True
    wakeups.register("new")
    assert await wakeups.listed("new", api.list_bindings, PERIOD) is True
    assert api.lists == 1  # the list is not yet a period old: not made again

    clock.now += PERIOD
    assert await wakeups.listed("new", api.list_bindings, PERIOD) is False
    assert api.lists == 2


async def test_a_failed_list_concludes_nothing_until_the_next_period() -> None:
    clock = Clock()
    api, wakeups = ApiServer(), Wakeups(clock=clock)
    wakeups.register("a")
    api.down = True
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is True
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is True
    assert api.lists == 1
    api.down = False
    clock.now += PERIOD
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is False


async def test_loops_asking_at_once_share_one_list() -> None:
    """A hundred loops whose waits end together cause one request, not a hundred."""
    api, wakeups = ApiServer(*(f"b{n}" for n in range(50))), Wakeups()
    for n in range(100):
        wakeups.register(f"b{n}")
    answers = await asyncio.gather(
        *(wakeups.listed(f"b{n}", api.list_bindings, PERIOD) for n in range(100))
    )
    assert answers == [True] * 50 + [False] * 50
    assert api.lists == 1


async def test_a_forgotten_binding_is_not_judged() -> None:
    """After its release or DELETED event a binding's loop is no longer the registry's to end."""
    api, wakeups = ApiServer(), Wakeups()
    wakeups.register("a")
    wakeups.forget("a")
    assert await wakeups.listed("a", api.list_bindings, PERIOD) is True
    assert api.lists == 0
