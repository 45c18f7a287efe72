"""The account's rate limits: calls per rolling minute (40007) and per hour (40014)."""

from __future__ import annotations

from collections.abc import Callable

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    ManualClock,
    OpenApiProbe,
    seed_id,
)

BODY = {"ids": [seed_id(1)]}


def codes_of(api: OpenApiProbe, count: int, endpoint: str = "phone/status") -> list[int]:
    """The envelope codes of `count` consecutive calls."""
    return [api.call(endpoint, BODY)["code"] for _ in range(count)]


def test_default_limit_is_200_calls_per_minute(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """With the default config the 201st call within a minute earns code 40007."""
    sim = make_sim()
    api = make_probe(sim)
    assert codes_of(api, 201) == [0] * 200 + [40007]
    assert sim.admin.counters().replies(40007) == 1


def test_limit_lifts_when_the_minute_has_rolled_by(
    make_sim: Callable[..., GeelarkSimulator],
    make_probe: Callable[..., OpenApiProbe],
    clock: ManualClock,
) -> None:
    """Calls refused with 40007 succeed again once 60 s have passed since the window filled."""
    api = make_probe(make_sim(rate_limit_per_minute=3))
    assert codes_of(api, 4) == [0, 0, 0, 40007]
    clock.advance(59.5)
    assert codes_of(api, 1) == [40007]
    clock.advance(0.5)
    assert codes_of(api, 4) == [0, 0, 0, 40007]


def test_window_rolls_instead_of_resetting_on_the_minute(
    make_sim: Callable[..., GeelarkSimulator],
    make_probe: Callable[..., OpenApiProbe],
    clock: ManualClock,
) -> None:
    """Budget returns one call at a time, 60 s after each call that spent it."""
    api = make_probe(make_sim(rate_limit_per_minute=2))
    codes_of(api, 1)
    clock.advance(30)
    codes_of(api, 1)
    clock.advance(30)
    assert codes_of(api, 2) == [0, 40007]


def test_budget_is_shared_by_every_endpoint_and_both_auth_modes(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """Calls to different endpoints, in token and key mode, draw on one account budget."""
    api = make_probe(make_sim(rate_limit_per_minute=3))
    assert api.call("phone/status", BODY, mode="token")["code"] == 0
    assert api.call("phone/list", {"page": 1, "pageSize": 1}, mode="key")["code"] == 0
    assert api.call("adb/getData", BODY)["code"] == 0
    assert api.call("phone/list", {"page": 1, "pageSize": 1}, mode="key")["code"] == 40007


def test_refused_calls_do_not_spend_budget(
    make_sim: Callable[..., GeelarkSimulator],
    make_probe: Callable[..., OpenApiProbe],
    clock: ManualClock,
) -> None:
    """Calls answered 40007 or 40003 are not counted against the account's budget."""
    sim = make_sim(rate_limit_per_minute=1)
    api = make_probe(sim)
    intruder = make_probe(sim, token="wrong")
    assert intruder.call("phone/status", BODY)["code"] == 40003
    assert codes_of(api, 3) == [0, 40007, 40007]
    clock.advance(60)
    assert codes_of(api, 1) == [0]


def test_hourly_limit_answers_40014_and_locks_the_account(
    make_sim: Callable[..., GeelarkSimulator],
    make_probe: Callable[..., OpenApiProbe],
    clock: ManualClock,
) -> None:
    """Past the hourly budget every call earns 40014 until the lock (2 h by default) ends."""
    api = make_probe(make_sim(rate_limit_per_hour=3))
    assert codes_of(api, 4) == [0, 0, 0, 40014]
    clock.advance(3_600)
    assert codes_of(api, 1) == [40014]
    clock.advance(7_200)
    assert codes_of(api, 1) == [0]


def test_limits_can_be_turned_off(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """With both limits set to None no call is ever refused for volume."""
    api = make_probe(make_sim(rate_limit_per_minute=None, rate_limit_per_hour=None))
    assert set(codes_of(api, 250)) == {0}


def test_limit_can_be_changed_while_running(sim: GeelarkSimulator, api: OpenApiProbe) -> None:
    """Lowering rateLimitPerMinute through the admin API takes effect on the next call."""
    sim.admin.update_settings(rate_limit_per_minute=2)
    assert codes_of(api, 3) == [0, 0, 40007]
