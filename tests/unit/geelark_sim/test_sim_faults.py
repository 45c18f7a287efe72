"""Injected faults: outages, HTTP errors, envelope codes and latency, per endpoint or for all."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from phonefleet_testbed.geelark_sim import GeelarkSimulator, OpenApiProbe, SimulatorAdmin, seed_id

BODY = {"ids": [seed_id(1)]}


def test_outage_closes_the_connection_without_a_reply(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """During an outage a call's connection is closed before any HTTP reply is sent."""
    admin.set_faults(outage=True)
    with pytest.raises(requests.ConnectionError):
        api.post("phone/status", BODY)
    assert admin.counters().dropped == 1


def test_http_500_is_answered_without_an_envelope(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """An http_status fault answers that status with a non-JSON body."""
    admin.set_faults(http_status=500)
    response = api.post("phone/list", {"page": 1, "pageSize": 1})
    assert response.status_code == 500
    assert "simulated" in response.text
    assert admin.counters().http_statuses == {500: 1}


def test_code_50000_hits_only_the_endpoint_it_was_set_for(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """A code fault on adb/setStatus answers 50000 there while other endpoints work."""
    admin.set_faults("adb/setStatus", code=50000)
    assert api.call("adb/setStatus", {"ids": [seed_id(1)], "open": True})["code"] == 50000
    assert api.call("phone/status", BODY)["code"] == 0
    assert admin.counters().replies(50000, "adb/setStatus") == 1


def test_fault_with_times_lifts_itself(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """A rule for the next two calls fails exactly two calls, then disappears."""
    admin.set_faults(http_status=503, times=2)
    statuses = [api.post("phone/status", BODY).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert admin.faults() == {}


def test_endpoint_rule_wins_over_the_catch_all(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """An endpoint's own rule is used instead of the "*" rule for calls to that endpoint."""
    admin.set_faults("*", code=50000)
    admin.set_faults("/open/v1/phone/status", http_status=502)
    assert api.post("phone/status", BODY).status_code == 502
    assert api.call("adb/getData", BODY)["code"] == 50000


def test_clearing_faults_restores_normal_service(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """After clear_faults calls are answered normally again, one endpoint or all at once."""
    admin.set_faults("phone/status", outage=True)
    admin.set_faults("phone/list", code=50000)
    admin.clear_faults("phone/status")
    assert api.call("phone/status", BODY)["code"] == 0
    assert api.call("phone/list", {})["code"] == 50000
    admin.clear_faults()
    assert api.call("phone/list", {})["code"] == 0


def test_authentication_is_checked_before_an_injected_code(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """An injected 50000 is only given to calls that passed authentication."""
    admin.set_faults(code=50000)
    assert api.call("phone/status", BODY, headers={"traceId": "t"})["code"] == 40003


def test_latency_is_waited_out_before_the_reply(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """A latency fault of 150 ms on top of 20 ms configured: the call waits 0.17 s, then answers."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    sim = make_sim(latency_ms=20, sleep=record)
    sim.admin.set_faults("phone/status", latency_ms=150)
    api = make_probe(sim)
    assert api.call("phone/status", BODY)["code"] == 0
    assert api.call("phone/list", {})["code"] == 0
    assert waited == [pytest.approx(0.17), pytest.approx(0.02)]


def test_a_canned_reply_answers_code_0_with_exactly_its_data(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """``reply`` gives an odd but successful answer: data null, or a page shorter than its total."""
    admin.set_faults("phone/list", reply={"data": None}, times=1)
    assert api.call("phone/list", {}) | {"traceId": ""} == {
        "traceId": "",
        "code": 0,
        "msg": "success",
        "data": None,
    }
    short = {"total": 250, "page": 1, "pageSize": 100, "items": []}
    admin.set_faults("phone/list", reply={"data": short}, times=1)
    assert api.call("phone/list", {})["data"] == short
    assert api.call("phone/list", {})["data"]["total"] == 5


def test_unknown_endpoint_in_a_fault_is_rejected(admin: SimulatorAdmin) -> None:
    """A fault for an endpoint the simulator does not serve is refused by the admin API."""
    with pytest.raises(RuntimeError, match="400"):
        admin.set_faults("phone/explode", code=50000)
