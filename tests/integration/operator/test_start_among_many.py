"""An operator that starts among more bindings than kopf's worker limit handles every one.

kopf's object workers wait, holding their slot, until an index has seen every object before they
run any other handler. With the waiters kept in a kopf index and at most 100 object workers, an
operator started among 150 existing bindings indexed 100 of them and then ran nothing at all:
any restart of a fleet above 100 stalled. The waiters now come from the bindings' own events.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import Operator, make_binding
from phonefleet_testbed.waiting import wait_for

#: More than the operator's kopf worker limit (main.py:tune_kopf).
BINDINGS = 150


def test_an_operator_started_among_150_bindings_gives_each_a_status(
    kubectl: Kubectl, namespace: str, operator_factory: Callable[..., Operator]
) -> None:
    """150 bindings for phones Geelark does not have, applied while no operator runs: once the
    operator starts, every one of them reports PhoneNotFound."""
    items = [
        make_binding(f"b-{i:03d}", f"no-such-phone-{i:03d}", namespace) for i in range(BINDINGS)
    ]
    kubectl(
        "apply",
        "-f",
        "-",
        input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )

    operator_factory()

    def not_found() -> int:
        listed = kubectl("get", "phonebindings", "-n", namespace, "-o", "json")
        found = json.loads(listed.stdout)["items"]
        return sum((b.get("status") or {}).get("phase") == "PhoneNotFound" for b in found)

    wait_for(
        lambda: not_found() == BINDINGS,
        240,
        message=f"all {BINDINGS} bindings to report PhoneNotFound",
    )
