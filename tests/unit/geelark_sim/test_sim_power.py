"""phone/status, phone/start and phone/stop follow Geelark's power states and batch replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    ManualClock,
    OpenApiProbe,
    SimulatorAdmin,
    seed_id,
)

UNKNOWN = "999999999999999999"


def status_of(api: OpenApiProbe, phone_id: str) -> int:
    """The status phone/status reports for one phone."""
    details = api.data("phone/status", {"ids": [phone_id]})["successDetails"]
    status: int = details[0]["status"]
    return status


def test_status_reports_known_phones_and_fails_unknown_ones_with_42001(api: OpenApiProbe) -> None:
    """phone/status answers code 0 with a success detail per known phone and 42001 per unknown."""
    data = api.data("phone/status", {"ids": [seed_id(1), UNKNOWN]})
    assert data["successDetails"] == [{"id": seed_id(1), "serialName": "phone-001", "status": 2}]
    assert data["failDetails"] == [{"code": 42001, "id": UNKNOWN, "msg": "env not found"}]
    assert (data["totalAmount"], data["successAmount"], data["failAmount"]) == (2, 1, 1)


def test_status_accepts_at_most_100_ids(api: OpenApiProbe) -> None:
    """phone/status with 101 ids earns code 40004, and without ids too."""
    assert api.call("phone/status", {"ids": [seed_id(n) for n in range(101)]})["code"] == 40004
    assert api.call("phone/status", {})["code"] == 40004


def test_start_boots_through_starting_to_running(
    api: OpenApiProbe, clock: ManualClock, sim: GeelarkSimulator
) -> None:
    """A started phone reports 1 (starting) until the boot delay has passed, then 0 (running)."""
    api.data("phone/start", {"ids": [seed_id(1)], "energySavingMode": 0})
    assert status_of(api, seed_id(1)) == 1
    clock.advance(sim.config.boot_seconds - 0.5)
    assert status_of(api, seed_id(1)) == 1
    clock.advance(0.5)
    assert status_of(api, seed_id(1)) == 0


def test_start_reply_links_to_a_live_view_page(api: OpenApiProbe) -> None:
    """Each started phone's success detail has a live-view url that a browser can open."""
    data = api.data("phone/start", {"ids": [seed_id(2)]})
    detail = data["successDetails"][0]
    assert detail["id"] == seed_id(2)
    assert detail["chargingMethod"] == "Per-minute usage"
    page = requests.get(detail["url"], timeout=10)
    assert page.status_code == 200
    assert "phone-002" in page.text


def test_start_fails_unknown_phones_with_42001_and_expired_ones_with_43004(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """phone/start answers code 0 and lists 42001 (not found) and 43004 (expired) per phone."""
    expired = admin.create_phone("old-phone", status=3)
    data = api.data("phone/start", {"ids": [seed_id(1), UNKNOWN, expired.id]})
    assert [detail["id"] for detail in data["successDetails"]] == [seed_id(1)]
    assert {(fail["id"], fail["code"]) for fail in data["failDetails"]} == {
        (UNKNOWN, 42001),
        (expired.id, 43004),
    }
    assert status_of(api, expired.id) == 3


def test_start_accepts_at_most_200_ids(api: OpenApiProbe) -> None:
    """phone/start with 201 ids earns code 40004 and starts nothing."""
    ids = [str(n) for n in range(201)]
    assert api.call("phone/start", {"ids": ids})["code"] == 40004


def test_starting_a_phone_that_is_on_changes_nothing(
    api: OpenApiProbe, admin: SimulatorAdmin, start_phone: Callable[[str], Any]
) -> None:
    """A second start of a running phone succeeds and keeps it running with the same password."""
    start_phone(seed_id(1))
    before = admin.phone(seed_id(1))
    data = api.data("phone/start", {"ids": [seed_id(1)]})
    assert data["successAmount"] == 1
    after = admin.phone(seed_id(1))
    assert (after.status, after.adb_password, after.start_count) == (0, before.adb_password, 1)


def test_stop_shuts_a_running_phone_down(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """phone/stop takes a running phone to status 2."""
    start_phone(seed_id(1))
    data = api.data("phone/stop", {"ids": [seed_id(1)]})
    assert data["successAmount"] == 1
    assert status_of(api, seed_id(1)) == 2


def test_stopping_a_stopped_phone_is_harmless(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """phone/stop on a phone that is already off succeeds and counts no stop."""
    data = api.data("phone/stop", {"ids": [seed_id(1), UNKNOWN]})
    assert [detail["id"] for detail in data["successDetails"]] == [seed_id(1)]
    assert data["failDetails"][0]["code"] == 42001
    assert admin.phone(seed_id(1)).stop_count == 0


def test_starting_phone_can_be_stopped_before_it_finishes_booting(api: OpenApiProbe) -> None:
    """A phone still starting stops at once when asked."""
    api.data("phone/start", {"ids": [seed_id(1)]})
    api.data("phone/stop", {"ids": [seed_id(1)]})
    assert status_of(api, seed_id(1)) == 2
