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


def apply_wave(kubectl: Kubectl, namespace: str, prefix: str, phone_ids: list[str]) -> None:
    """One binding a phone, named ``prefix-N``, in one apply."""
    items = [make_binding(f"{prefix}-{i}", phone, namespace) for i, phone in enumerate(phone_ids)]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def wait_running(kubectl: Kubectl, namespace: str, prefix: str, count: int) -> None:
    """Until ``count`` bindings named ``prefix-*`` are Running."""

    def running() -> bool:
        return count == int(
            sum(
                (b.get("status") or {}).get("phase") == "Running"
                and b["metadata"]["name"].startswith(f"{prefix}-")
                for b in kubectl.list("phonebindings", namespace)
            )
        )

    wait_for(running, 90, message=f"the {count} bindings {prefix}-* to run")


def naming(calls: list[ServedCall], endpoint: str, phone_id: str) -> list[ServedCall]:
    """The served calls to ``endpoint`` that named the phone."""
    return [c for c in calls if c.endpoint == endpoint and phone_id in c.ids]


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
    first = [fleet.add_phone() for _ in range(WAVE)]
    apply_wave(kubectl, namespace, "first", first)
    wait_running(kubectl, namespace, "first", WAVE)

    admin.update_settings(boot_seconds=QUICKER_BOOT_SECONDS)
    second = [fleet.add_phone() for _ in range(WAVE)]
    apply_wave(kubectl, namespace, "second", second)
    wait_running(kubectl, namespace, "second", WAVE)

    calls = admin.served_calls()
    for phone in second:
        started = naming(calls, PHONE_START, phone)[0].seq
        read = naming(calls, ADB_GET_DATA, phone)[-1].seq
        asked = [c for c in naming(calls, PHONE_STATUS, phone) if started < c.seq < read]
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
    first = [fleet.add_phone() for _ in range(WAVE)]
    apply_wave(kubectl, namespace, "first", first)
    wait_running(kubectl, namespace, "first", WAVE)

    second = [fleet.add_phone() for _ in range(WAVE)]
    apply_wave(kubectl, namespace, "second", second)
    wait_running(kubectl, namespace, "second", WAVE)

    calls = admin.served_calls()
    for phone in second:
        started = naming(calls, PHONE_START, phone)[0].seq
        read = naming(calls, ADB_GET_DATA, phone)[-1].seq
        assert [c for c in naming(calls, PHONE_STATUS, phone) if started < c.seq < read]
