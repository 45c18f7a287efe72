"""The admin API under /_sim/ and its client: phones, running ids, counters, settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    ManualClock,
    OpenApiProbe,
    SimulatorAdmin,
    SimulatorAdminError,
    seed_id,
)


def test_phones_lists_seeded_phones_with_their_state(admin: SimulatorAdmin) -> None:
    """phones() shows every phone with status, ADB state and running-since."""
    phones = admin.phones()
    assert [phone.serial_name for phone in phones] == [f"phone-00{n}" for n in range(1, 6)]
    first = phones[0]
    assert (first.status, first.adb_open, first.running_since) == (2, False, None)
    assert admin.is_healthy()


def test_created_phone_is_listed_by_the_open_api(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """A phone created with an explicit id and Android version appears in phone/list."""
    admin.create_phone("custom", phone_id="123456789012345678", os_version="Android 10")
    items = api.data("phone/list", {"ids": ["123456789012345678"]})["items"]
    assert items[0]["serialName"] == "custom"
    assert items[0]["equipmentInfo"]["osVersion"] == "Android 10"


def test_created_phone_without_id_gets_the_next_stable_id(admin: SimulatorAdmin) -> None:
    """A phone created without an id gets the next id of the seeded sequence."""
    assert admin.create_phone("sixth").id == seed_id(6)


def test_creating_a_duplicate_id_is_refused(admin: SimulatorAdmin) -> None:
    """Creating a phone with an id that exists fails with HTTP 409."""
    with pytest.raises(SimulatorAdminError, match="409"):
        admin.create_phone("again", phone_id=seed_id(1))


def test_created_phone_can_start_running_or_expired(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """A phone created with status 0 is running at once; one with status 3 is expired."""
    running = admin.create_phone("hot", status=0)
    expired = admin.create_phone("dead", status=3)
    details = api.data("phone/status", {"ids": [running.id, expired.id]})["successDetails"]
    assert [detail["status"] for detail in details] == [0, 3]
    assert admin.running_phone_ids() == [running.id]


def test_renamed_phone_keeps_its_id(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """After a rename phone/list finds the phone by its new name and the same id."""
    admin.rename_phone(seed_id(2), "renamed")
    items = api.data("phone/list", {"page": 1, "pageSize": 10, "serialName": "renamed"})["items"]
    assert [item["id"] for item in items] == [seed_id(2)]


def test_deleted_phone_is_not_found(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """After delete_phone the Open API answers 42001 for that id."""
    admin.delete_phone(seed_id(3))
    fail = api.data("phone/status", {"ids": [seed_id(3)]})["failDetails"][0]
    assert fail["code"] == 42001
    with pytest.raises(SimulatorAdminError, match="404"):
        admin.delete_phone(seed_id(3))


def test_running_phone_ids_lists_phones_that_are_on(
    admin: SimulatorAdmin, start_phone: Callable[[str], Any]
) -> None:
    """running_phone_ids() names started phones until they are stopped out of band."""
    start_phone(seed_id(4))
    start_phone(seed_id(2))
    assert sorted(admin.running_phone_ids()) == [seed_id(2), seed_id(4)]
    admin.update_phone(seed_id(4), status=2)
    assert admin.running_phone_ids() == [seed_id(2)]


def test_phone_snapshot_counts_starts_and_stops(
    api: OpenApiProbe, admin: SimulatorAdmin, start_phone: Callable[[str], Any]
) -> None:
    """The admin view counts Open API starts and stops, so tests can prove nothing was left on."""
    start_phone(seed_id(1))
    api.data("phone/stop", {"ids": [seed_id(1)]})
    start_phone(seed_id(1))
    phone = admin.phone(seed_id(1))
    assert (phone.start_count, phone.stop_count, phone.status) == (2, 1, 0)
    assert phone.running_since is not None


def test_power_log_numbers_every_power_change_in_order(
    api: OpenApiProbe, admin: SimulatorAdmin, start_phone: Callable[[str], Any]
) -> None:
    """Starts and stops through the Open API, stops out of band and deletions are journaled;
    ``after`` returns only the newer entries, and no-op stops are not entries."""
    start_phone(seed_id(1))
    start_phone(seed_id(2))
    api.data("phone/stop", {"ids": [seed_id(1)]})
    api.data("phone/stop", {"ids": [seed_id(1)]})  # already off: nothing changes
    admin.update_phone(seed_id(2), status=2)
    start_phone(seed_id(3))
    admin.delete_phone(seed_id(3))
    changes = [(c.seq, c.id, c.on) for c in admin.power_log()]
    assert changes == [
        (1, seed_id(1), True),
        (2, seed_id(2), True),
        (3, seed_id(1), False),
        (4, seed_id(2), False),
        (5, seed_id(3), True),
        (6, seed_id(3), False),
    ]
    assert [c.seq for c in admin.power_log(after=4)] == [5, 6]


def test_served_calls_log_each_served_call_with_its_ids_and_clock_time(
    api: OpenApiProbe, admin: SimulatorAdmin, clock: ManualClock
) -> None:
    """Served calls are numbered in order with the simulator clock's time and the ids they
    named; a call refused by the rate limit is not served; ``after`` returns the newer ones."""
    api.data("phone/status", {"ids": [seed_id(1), seed_id(2)]})
    clock.advance(2.5)
    api.data("phone/start", {"ids": [seed_id(3)]})
    api.data("phone/list", {})
    admin.update_settings(rate_limit_per_minute=3)
    assert api.call("phone/stop", {"ids": [seed_id(3)]})["code"] == 40007

    calls = admin.served_calls()
    assert [(c.seq, c.endpoint.removeprefix("/open/v1/"), c.ids) for c in calls] == [
        (1, "phone/status", (seed_id(1), seed_id(2))),
        (2, "phone/start", (seed_id(3),)),
        (3, "phone/list", ()),
    ]
    assert calls[1].at - calls[0].at == 2.5
    assert [c.seq for c in admin.served_calls(after=2)] == [3]


def test_counters_count_calls_and_reply_codes_per_endpoint(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """counters() reports calls per endpoint, replies per code and the busiest minute."""
    api.call("phone/list", {"page": 1, "pageSize": 1})
    api.call("phone/list", {"page": 0, "pageSize": 1})
    api.call("phone/status", {"ids": [seed_id(1)]}, headers={"traceId": "t"})
    counters = admin.counters()
    assert counters.total == 3
    assert counters.calls("phone/list") == 2
    assert counters.calls("/open/v1/phone/status") == 1
    assert counters.codes == {0: 1, 40008: 1, 40003: 1}
    assert counters.replies(40008, "phone/list") == 1
    assert counters.max_per_minute == 3


def test_counters_count_the_phone_ids_each_endpoint_was_asked_about(
    api: OpenApiProbe, admin: SimulatorAdmin
) -> None:
    """ids per endpoint: with the calls, how full the batches were; a listing names none."""
    api.call("phone/status", {"ids": [seed_id(1), seed_id(2)]})
    api.call("phone/status", {"ids": [seed_id(3)]})
    api.call("phone/list", {"page": 1, "pageSize": 1})

    counters = admin.counters()

    assert counters.ids == {"/open/v1/phone/status": 3}
    admin.reset_counters()
    assert admin.counters().ids == {}


def test_reset_counters_starts_from_zero(api: OpenApiProbe, admin: SimulatorAdmin) -> None:
    """After reset_counters every count is zero."""
    api.call("phone/list", {})
    admin.reset_counters()
    counters = admin.counters()
    assert (counters.total, counters.codes, counters.max_per_minute) == (0, {}, 0)


def test_settings_can_be_read_and_changed(admin: SimulatorAdmin) -> None:
    """update_settings changes boot and ADB delays and reports the new settings."""
    settings = admin.update_settings(boot_seconds=5, adb_enable_seconds=3)
    assert (settings["bootSeconds"], settings["adbEnableSeconds"]) == (5.0, 3.0)
    assert admin.settings() == settings


def test_bad_admin_input_is_answered_400(sim: GeelarkSimulator) -> None:
    """Malformed admin requests are refused with HTTP 400 and a message."""
    response = requests.post(f"{sim.base_url}/_sim/phones", json={"id": "x"}, timeout=10)
    assert response.status_code == 400
    assert "error" in response.json()
    with pytest.raises(SimulatorAdminError, match="400"):
        sim.admin.create_phone("bad-status", status=7)
