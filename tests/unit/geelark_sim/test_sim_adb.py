"""adb/setStatus and adb/getData: ADB needs a running phone, a supported model and time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    ManualClock,
    OpenApiProbe,
    SimulatorAdmin,
    seed_id,
)

PHONE = seed_id(1)


def adb_item(api: OpenApiProbe, phone_id: str) -> dict[str, Any]:
    """The adb/getData item of one phone."""
    item: dict[str, Any] = api.data("adb/getData", {"ids": [phone_id]})["items"][0]
    return item


def enable_adb(api: OpenApiProbe, phone_id: str) -> dict[str, Any]:
    """Switch ADB on for one phone; return the reply data."""
    return api.data("adb/setStatus", {"ids": [phone_id], "open": True})


def test_adb_data_of_an_enabled_phone_is_a_local_address_and_password(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """After start and setStatus, getData reports code 0, ip 127.0.0.1, a string port and a pwd."""
    start_phone(PHONE)
    assert enable_adb(api, PHONE)["successDetails"] == [{"id": PHONE}]
    item = adb_item(api, PHONE)
    assert item["code"] == 0
    assert item["id"] == PHONE
    assert item["ip"] == "127.0.0.1"
    assert isinstance(item["port"], str)
    assert item["port"].isdigit()
    assert len(item["pwd"]) == 6


def test_set_status_on_a_phone_that_is_not_running_fails_with_42002(
    api: OpenApiProbe,
) -> None:
    """setStatus on a stopped or still-starting phone reports 42002 in failDetails."""
    assert enable_adb(api, PHONE)["failDetails"][0]["code"] == 42002
    api.data("phone/start", {"ids": [PHONE]})
    assert enable_adb(api, PHONE)["failDetails"][0]["code"] == 42002


def test_get_data_of_a_stopped_phone_is_42002_with_empty_fields(api: OpenApiProbe) -> None:
    """getData reports item code 42002 with empty ip, port and pwd for a phone that is off."""
    assert adb_item(api, PHONE) == {"code": 42002, "id": PHONE, "ip": "", "port": "", "pwd": ""}


def test_get_data_before_adb_is_enabled_is_49001(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """getData reports item code 49001 on a running phone whose ADB is off."""
    start_phone(PHONE)
    assert adb_item(api, PHONE)["code"] == 49001


def test_enabling_adb_takes_the_configured_delay(
    make_sim: Callable[..., GeelarkSimulator],
    make_probe: Callable[..., OpenApiProbe],
    clock: ManualClock,
) -> None:
    """ADB reports 49001 until adb_enable_seconds after setStatus, then code 0."""
    sim = make_sim(boot_seconds=0.0, adb_enable_seconds=3.0)
    api = make_probe(sim)
    api.data("phone/start", {"ids": [PHONE]})
    enable_adb(api, PHONE)
    clock.advance(2.5)
    assert adb_item(api, PHONE)["code"] == 49001
    clock.advance(0.5)
    assert adb_item(api, PHONE)["code"] == 0


def test_android_10_phone_is_skipped_by_set_status_and_answers_49002_to_get_data(
    api: OpenApiProbe, admin: SimulatorAdmin, start_phone: Callable[[str], Any]
) -> None:
    """Geelark's setStatus documentation: "unsupported models will be automatically filtered".
    An Android 10 phone is taken by setStatus without a failure and without ADB; getData then
    answers 49002, even while it runs."""
    phone = admin.create_phone("old-android", os_version="Android 10")
    start_phone(phone.id)
    assert enable_adb(api, phone.id)["failDetails"] == []
    assert adb_item(api, phone.id)["code"] == 49002
    assert not admin.phone(phone.id).adb_open


def test_set_status_can_take_a_switch_of_a_phone_that_is_not_running_and_drop_it(
    api: OpenApiProbe, admin: SimulatorAdmin, clock: ManualClock
) -> None:
    """With adb_switch_taken_when_off (the other reading of Geelark's "start the phone
    first"), a booting phone's switch answers code 0 and switches nothing: once the phone
    runs, getData says 49001 until ADB is switched on again."""
    assert admin.update_settings(adb_switch_taken_when_off=True)["adbSwitchTakenWhenOff"]
    api.data("phone/start", {"ids": [PHONE]})
    reply = enable_adb(api, PHONE)
    assert (reply["successDetails"], reply["failDetails"]) == ([{"id": PHONE}], [])
    assert adb_item(api, PHONE)["code"] == 42002
    clock.advance(admin.settings()["bootSeconds"])
    assert adb_item(api, PHONE)["code"] == 49001
    enable_adb(api, PHONE)
    assert adb_item(api, PHONE)["code"] == 0


def test_unknown_phone_is_42001_on_both_adb_endpoints(api: OpenApiProbe) -> None:
    """Both ADB endpoints report 42001 for a phone id the account does not have."""
    unknown = "999999999999999999"
    assert enable_adb(api, unknown)["failDetails"][0]["code"] == 42001
    assert adb_item(api, unknown)["code"] == 42001


def test_adb_can_be_switched_off_again(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """setStatus open=false turns ADB off: getData goes back to 49001."""
    start_phone(PHONE)
    enable_adb(api, PHONE)
    api.data("adb/setStatus", {"ids": [PHONE], "open": False})
    assert adb_item(api, PHONE)["code"] == 49001


def test_set_status_requires_a_boolean_open(api: OpenApiProbe) -> None:
    """setStatus without a boolean `open` earns code 40004."""
    assert api.call("adb/setStatus", {"ids": [PHONE], "open": "yes"})["code"] == 40004


def test_stopping_a_phone_turns_adb_off(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """After stop and a new start, ADB is off until it is enabled again."""
    start_phone(PHONE)
    enable_adb(api, PHONE)
    api.data("phone/stop", {"ids": [PHONE]})
    start_phone(PHONE)
    assert adb_item(api, PHONE)["code"] == 49001


def test_password_changes_on_every_start_and_port_stays(
    api: OpenApiProbe, start_phone: Callable[[str], Any]
) -> None:
    """A restarted phone keeps its ADB port but gets a new glogin password."""
    start_phone(PHONE)
    enable_adb(api, PHONE)
    first = adb_item(api, PHONE)
    api.data("phone/stop", {"ids": [PHONE]})
    start_phone(PHONE)
    enable_adb(api, PHONE)
    second = adb_item(api, PHONE)
    assert second["port"] == first["port"]
    assert second["pwd"] != first["pwd"]


def test_each_phone_has_its_own_port(api: OpenApiProbe, start_phone: Callable[[str], Any]) -> None:
    """Two running phones report different ADB ports."""
    for phone_id in (seed_id(1), seed_id(2)):
        start_phone(phone_id)
        enable_adb(api, phone_id)
    items = api.data("adb/getData", {"ids": [seed_id(1), seed_id(2)]})["items"]
    assert len({item["port"] for item in items}) == 2
