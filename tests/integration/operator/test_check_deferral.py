"""Checks of running phones go last for the account's budget, on the real parts: the simulator's
log of served calls shows a fleet's new phones served first and every check still made in time.

A Running binding asks Geelark every ``RUNNING_RECHECK_SECONDS`` whether its phone still runs.
The gateway holds such a check (a phone last seen running) back while the phones on their way
spend the budget, gathers the held checks into one batch, and sends it after
:data:`~phonefleet_operator.geelark.gateway.CHECK_DEFER_SECONDS` at the latest. Here 30 bindings
run when 20 new ones arrive whose phones boot for 12 s, on a small budget (20 calls in any 60 s,
which the new phones' start, switches and polls fill): the running phones' checks come due during
the boot and must wait for it.
Every time compared is the simulator's own clock, read from its call log. What is asserted here
is order (which calls the simulator served while the checks were held, and what the held batch
named); how long a check may be held at most is a figure of the gateway, asserted on a virtual
clock (``tests/unit/geelark/test_geelark_batching.py``), not on a loaded machine's real one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from phonefleet_operator.geelark.gateway import CHECK_DEFER_SECONDS
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import ServedCall
from phonefleet_testbed.geelark_sim.endpoints import ADB_GET_DATA, PHONE_START, PHONE_STATUS
from phonefleet_testbed.scenarios import Fleet, Operator, make_binding
from phonefleet_testbed.waiting import wait_for

RUNNING, NEW = 30, 20
#: As in the operator scenarios' settings (phonefleet_testbed.scenarios.operator_env).
RUNNING_RECHECK_SECONDS = 5.0
#: How long the new phones boot: longer than a recheck, so checks come due meanwhile.
BOOT_SECONDS = 12.0


def apply_bindings(kubectl: Kubectl, namespace: str, prefix: str, phone_ids: list[str]) -> None:
    """One binding a phone, named ``prefix-NN``, in one apply."""
    items = [
        make_binding(f"{prefix}-{i:02d}", phone_id, namespace)
        for i, phone_id in enumerate(phone_ids)
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def running_bindings(kubectl: Kubectl, namespace: str, prefix: str) -> int:
    """How many bindings named ``prefix-*`` are Running."""
    return sum(
        (b.get("status") or {}).get("phase") == "Running"
        and b["metadata"]["name"].startswith(f"{prefix}-")
        for b in kubectl.list("phonebindings", namespace)
    )


def checks_in(call: ServedCall) -> set[str]:
    """The phones a served call asked the power state of."""
    return set(call.ids) if call.endpoint == PHONE_STATUS else set()


def checks_of(calls: list[ServedCall], phone_id: str) -> list[float]:
    """When Geelark was asked whether the phone runs."""
    return [c.at for c in calls if phone_id in checks_in(c)]


def test_checks_of_running_phones_wait_for_the_new_phones_then_go_as_one_batch(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
) -> None:
    """While 20 new phones start and boot, the running phones' checks that come due wait: the
    new phones' calls are served meanwhile and no check is; then one status call asks about all 30
    running phones and no booting one (a new phone whose ADB was read by then ran: it may be
    checked with them). The first check due waited longer than a whole recheck, and every
    running phone is checked again after that batch: the held checks resume."""
    admin = fleet.simulator.admin
    running = [fleet.add_phone(status=0) for _ in range(RUNNING)]
    operator_factory(PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE="20")
    apply_bindings(kubectl, namespace, "up", running)
    wait_for(
        lambda: running_bindings(kubectl, namespace, "up") == RUNNING,
        60,
        message=f"the {RUNNING} bindings of running phones to run",
    )
    # Every running phone checked at least once since it ran: its next ask is a check.
    wait_for(
        lambda: all(len(checks_of(admin.served_calls(), p)) >= 2 for p in running),
        30,
        message="a periodic check of every running phone",
    )

    admin.update_settings(boot_seconds=BOOT_SECONDS)
    new = [fleet.add_phone() for _ in range(NEW)]
    apply_bindings(kubectl, namespace, "new", new)

    def gathered() -> tuple[list[ServedCall], ServedCall] | None:
        calls = admin.served_calls()
        started = [c.seq for c in calls if c.endpoint == PHONE_START and set(c.ids) & set(new)]
        return next(
            (
                (calls, c)
                for c in calls
                if started and c.seq > started[0] and set(running) <= set(checks_in(c))
            ),
            None,
        )

    calls, held = wait_for(
        gathered,
        BOOT_SECONDS + CHECK_DEFER_SECONDS + 30,
        message="one status call after the new phones' start naming every running phone",
    )
    earlier = [c for c in calls if c.seq < held.seq]
    due = min(max(checks_of(earlier, p)) for p in running) + RUNNING_RECHECK_SECONDS
    meanwhile = [c for c in earlier if c.at > due]
    # The new phones' calls: their start, polls and ADB switches (a switch stands in for a poll
    # once the boot is learnt, docs/scale.md round 6b). How many fit between the first check due
    # and the held batch is the budget's: the new phones' first calls spend what the 60 s window
    # has left, and the next go as it slides. A quiet run served 5 there (the last 4 of the burst
    # and the first after the window slid); a run of the whole suite, whose running phones' last
    # check came late in the burst, served 1: the first call the window let through went to a
    # new phone, not to the checks. That one is the rule; the rest is the machine's.
    served_new = [c for c in meanwhile if set(c.ids) & set(new)]
    assert served_new, "no call of a new phone went while the checks waited"
    assert not [c for c in meanwhile if checks_in(c) & set(running)], "a check went meanwhile"
    # A new phone may be in the held batch only as a check: its ADB read (so it ran) came first.
    booting = {
        p for p in new if not [c for c in earlier if c.endpoint == ADB_GET_DATA and p in c.ids]
    }
    assert not set(held.ids) & booting, "the held checks went with polls of booting phones"
    assert held.at - due > RUNNING_RECHECK_SECONDS, "the checks were not held back"
    wait_for(
        lambda: all(
            [c for c in checks_of(admin.served_calls(), p) if c > held.at] for p in running
        ),
        RUNNING_RECHECK_SECONDS + CHECK_DEFER_SECONDS + 60,
        message="every running phone checked again after the held batch",
    )
