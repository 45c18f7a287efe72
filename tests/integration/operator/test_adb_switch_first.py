"""A phone's ADB switch stands in for its post-boot status poll, on the real parts (the operator
process, the control plane, the simulator as an HTTP server; docs/scale.md, "Round 6b").

Once the operator has seen how long boots take, a phone it starts costs a start, one ADB switch
and one ADB read on its way to Running: no status question at all (before, one status poll per
phone came between the start and the switch). And where Geelark takes the switch of a phone that
is still booting (a reading of its documentation the simulator can play), the operator finds out
from the next read, asks phones their status first again, and every binding still runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import ServedCall
from phonefleet_testbed.geelark_sim.endpoints import ADB_GET_DATA, PHONE_START, PHONE_STATUS
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding
from phonefleet_testbed.waiting import wait_for

#: Longer than the operator's boot poll in tests (0.3 s), so that the boot clock has a boot to
#: learn, and short enough for CI.
BOOT_SECONDS = 2.0
#: The second wave boots quicker than the boot the first one taught: its first question comes
#: after its boot, however the estimate was rounded.
QUICKER_BOOT_SECONDS = 1.5
#: Longer than a switch and Geelark's ADB delay (ADB_ENABLE_SECONDS, 3 s): the read after a
#: switch made too early finds the phone still booting.
SLOW_BOOT_SECONDS = 5.0
WAVE = 8


def run_wave(kubectl: Kubectl, namespace: str, fleet: Fleet, prefix: str) -> list[str]:
    """Add WAVE phones, bind each (``prefix-N``, in one apply) and wait until every one of
    those bindings is Running; the phones' ids."""
    phone_ids = [fleet.add_phone() for _ in range(WAVE)]
    items = [make_binding(f"{prefix}-{i}", phone, namespace) for i, phone in enumerate(phone_ids)]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def running() -> bool:
        return (
            int(
                sum(
                    (b.get("status") or {}).get("phase") == "Running"
                    and b["metadata"]["name"].startswith(f"{prefix}-")
                    for b in kubectl.list("phonebindings", namespace)
                )
            )
            == WAVE
        )

    wait_for(running, 90, message=f"the {WAVE} bindings {prefix}-* to run")
    return phone_ids


def naming(calls: list[ServedCall], endpoint: str, phone_id: str) -> list[ServedCall]:
    """The served calls to ``endpoint`` that named the phone."""
    return [c for c in calls if c.endpoint == endpoint and phone_id in c.ids]


def asked_on_its_way(calls: list[ServedCall], phone_id: str) -> list[ServedCall]:
    """The status calls naming the phone between its first start and its last ADB read."""
    started = naming(calls, PHONE_START, phone_id)[0].seq
    read = naming(calls, ADB_GET_DATA, phone_id)[-1].seq
    return [c for c in naming(calls, PHONE_STATUS, phone_id) if started < c.seq < read]


def test_phones_started_once_boots_are_known_cost_no_status_question_on_their_way(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """A first wave teaches the operator the 2 s boot; in the second wave (booting 1.5 s), no
    phone is named by a status call between its start and its last ADB read: its ADB switch
    told that it ran."""
    admin = fleet.simulator.admin
    admin.update_settings(boot_seconds=BOOT_SECONDS, adb_enable_seconds=0.5)
    operator_factory()
    run_wave(kubectl, namespace, fleet, "first")

    admin.update_settings(boot_seconds=QUICKER_BOOT_SECONDS)
    second = run_wave(kubectl, namespace, fleet, "second")

    calls = admin.served_calls()
    for phone in second:
        asked = asked_on_its_way(calls, phone)
        assert not asked, f"phone {phone} was asked its status on its way: {asked}"


def test_a_geelark_that_takes_switches_of_booting_phones_still_gets_every_binding_running(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """The simulator takes (and drops) the ADB switch of a phone that does not run. The boot
    clock's first guesses (from 0.3 s) come before the 5 s boot ends, the switches made then
    are dropped, and the reads 3 s later say "not running": the operator asks the phones'
    status again, switches ADB on once they run, and every binding of two waves runs; each
    phone of the second wave is asked its status before its ADB is read."""
    admin = fleet.simulator.admin
    admin.update_settings(
        boot_seconds=SLOW_BOOT_SECONDS, adb_enable_seconds=0.5, adb_switch_taken_when_off=True
    )
    operator_factory()
    run_wave(kubectl, namespace, fleet, "first")
    second = run_wave(kubectl, namespace, fleet, "second")

    calls = admin.served_calls()
    for phone in second:
        assert asked_on_its_way(calls, phone), f"phone {phone} was not asked its status"
