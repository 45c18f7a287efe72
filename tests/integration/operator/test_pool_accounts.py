"""PhonePools with two Geelark accounts in one cluster, one operator each (docs/tenancy.md,
"Several Geelark accounts"): each operator judges bindings by, counts against and writes the
status of its own account's pools only.

The accounts' operators run as in test_accounts_side_by_side.py (own process, own simulator,
own namespace). Both pools select serialNames ``*-phone-*``, which matches every phone of both
accounts: had either operator read the other's pool, every phone would be in two pools.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_accounts_side_by_side import Account, accounts, bind, claim  # noqa: F401 - the fixture

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.processes import ProcessExited
from phonefleet_testbed.scenarios import condition, make_binding, wait_phase
from phonefleet_testbed.waiting import wait_for
from phonefleet_testbed.watching import Watch

#: Account b's third phone (a has two): PHONES tells whose operator wrote a pool's status.
THIRD_B = "700000000000000003"


def pool(name: str, account: str, namespaces: list[str], max_running: int) -> dict[str, Any]:
    """A PhonePool of ``account`` holding every phone named ``*-phone-*``."""
    return {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhonePool",
        "metadata": {"name": name},
        "spec": {
            "account": account,
            "phones": {"serialNames": ["*-phone-*"]},
            "namespaces": {"names": namespaces},
            "maxRunning": max_running,
        },
    }


@pytest.fixture
def pool_names(kubectl: Kubectl) -> Iterator[list[str]]:
    """Names of the pools a test creates; deleted after the accounts' teardown released every
    binding (requested before ``accounts``, so torn down after it)."""
    names: list[str] = []
    yield names
    for name in names:
        kubectl("delete", "phonepool", name, "--ignore-not-found")


def status_of(kubectl: Kubectl, name: str) -> dict[str, Any]:
    """The pool's status now."""
    found = kubectl.get("phonepool", name)
    assert found is not None
    status: dict[str, Any] = found.get("status") or {}
    return status


def settle(kubectl: Kubectl, account: Account, count: int, phases: dict[str, int]) -> list[str]:
    """Wait until the account's bindings ``<account>-0`` .. ``-<count-1>`` are in ``phases``
    (phase -> how many); returns the names of the Running ones."""

    def now() -> dict[str, str]:
        return {
            b["metadata"]["name"]: (b.get("status") or {}).get("phase", "")
            for b in kubectl.list("phonebindings", account.namespace)
            if b["metadata"]["name"] in {f"{account.name}-{i}" for i in range(count)}
        }

    def counted() -> dict[str, int]:
        found: dict[str, int] = {}
        for phase in now().values():
            found[phase] = found.get(phase, 0) + 1
        return found

    wait_for(
        lambda: counted() == phases,
        90,
        message=lambda: f"{account.name}'s bindings {phases}: {now()}\n{account.log()}",
    )
    return sorted(name for name, phase in now().items() if phase == "Running")


def test_each_accounts_operator_keeps_its_own_pools_limit_and_status(
    pool_names: list[str],
    kubectl: Kubectl,
    control_plane: ControlPlane,
    accounts: dict[str, Account],  # noqa: F811 - the fixture imported above
) -> None:
    """pool-a (account a, maxRunning 1) and pool-b (account b, maxRunning 2; it also names a's
    namespace) select the same serialNames. Each account runs up to its own pool's limit and
    queues the rest; every version of each pool (watched) counts only its own account's phones
    and bindings; a binding in a's namespace naming b's phone is refused with reason
    PoolOfAnotherAccount; pool-b says it names a namespace its operator does not serve. With b's
    operator stopped, a slot freed in pool-a promotes a's waiter and pool-b is not written. An
    account, once set, cannot change."""
    a, b = accounts["a"], accounts["b"]
    b.simulator.admin.create_phone("b-phone-2", phone_id=THIRD_B)
    b.phones.append(THIRD_B)
    pool_names += ["pool-a", "pool-b"]
    kubectl.apply(pool("pool-a", "a", [a.namespace], 1))
    kubectl.apply(pool("pool-b", "b", [b.namespace, a.namespace], 2))

    with Watch(control_plane, "phonepools") as pools:
        a.start()
        b.start()
        for account, count in ((a, 2), (b, 3)):
            for i in range(count):
                kubectl.apply(
                    make_binding(f"{account.name}-{i}", account.phones[i], account.namespace)
                )
        kubectl.apply(make_binding("borrowed", "b-phone-2", a.namespace))

        # Bindings created in the same second are admitted in the order the operator reaches
        # them: which ones run is not fixed, how many is.
        ran_a = settle(kubectl, a, 2, {"Running": 1, "Queued": 1})
        ran_b = settle(kubectl, b, 3, {"Running": 2, "Queued": 1})
        borrowed = wait_phase(kubectl, a.namespace, "borrowed", "Forbidden", timeout=90)
        wait_for(
            lambda: (
                (
                    status_of(kubectl, "pool-a").get("phones"),
                    status_of(kubectl, "pool-b").get("phones"),
                )
                == (2, 3)
            ),
            60,
            message=lambda: f"both pools' PHONES\n{a.log()}\n{b.log()}",
        )

        admitted = condition(borrowed, "Admitted")
        assert admitted is not None
        assert admitted["reason"] == "PoolOfAnotherAccount"
        assert "PhonePool pool-b (account b)" in admitted["message"]
        assert a.running() == {a.phones[int(name[-1])] for name in ran_a}
        assert b.running() == {b.phones[int(name[-1])] for name in ran_b}
        pool_b = status_of(kubectl, "pool-b")
        served = next(c for c in pool_b["conditions"] if c["type"] == "NamespacesServed")
        assert (served["status"], pool_b["namespaces"]) == ("False", b.namespace)
        assert a.namespace in served["message"]
        wide = kubectl("get", "phonepools", "pool-a", "pool-b", "-o", "wide").stdout
        assert wide.splitlines()[0].split()[-1] == "ACCOUNT"
        assert [line.split()[-1] for line in wide.splitlines()[1:]] == ["a", "b"]

        b.stop()  # from here on, only a's operator could write pool-b
        written_b = (kubectl.get("phonepool", "pool-b") or {})["metadata"]["resourceVersion"]
        (runner,) = ran_a
        waiter = "a-1" if runner == "a-0" else "a-0"
        kubectl(
            "patch", "phonebinding", runner, "-n", a.namespace,
            "--type=merge", "-p", '{"spec":{"suspend":true}}',
        )  # fmt: skip
        wait_phase(kubectl, a.namespace, waiter, "Running", timeout=90)
        wait_for(
            lambda: (
                [h["name"] for h in status_of(kubectl, "pool-a").get("holders", [])] == [waiter]
            ),
            60,
            message=lambda: f"pool-a's holders to be {waiter} alone\n{a.log()}",
        )
        now_b = (kubectl.get("phonepool", "pool-b") or {})["metadata"]["resourceVersion"]
        assert now_b == written_b, f"pool-b written with its operator down\n{a.log()}"
        events = pools.stop()

    for event in events:
        status = event.object.get("status") or {}
        own = {"pool-a": (a, 1, 2), "pool-b": (b, 2, 3)}[event.name]
        account, limit, phones = own
        holders = status.get("holders") or []
        assert status.get("phones") in (None, phones), (event.name, status)
        assert len(holders) <= limit, (event.name, holders)
        assert {h["namespace"] for h in holders} <= {account.namespace}, (event.name, holders)
        assert not status.get("overlapping"), (event.name, status)

    moved = kubectl(
        "patch", "phonepool", "pool-a", "--type=merge", "-p", '{"spec":{"account":"b"}}',
        check=False,
    )  # fmt: skip
    assert moved.returncode != 0
    assert "spec.account cannot change once set" in moved.stderr
    assert (
        json.loads(kubectl("get", "phonepool", "pool-a", "-o", "json").stdout)["spec"]["account"]
        == "a"
    )


def test_an_operator_whose_identity_serves_another_account_refuses_to_start_and_says_so(
    pool_names: list[str],
    kubectl: Kubectl,
    accounts: dict[str, Account],  # noqa: F811 - the fixture imported above
) -> None:
    """Account b's operator run with account a's ServiceAccount (a wrong Deployment or overlay),
    leader election on: at start-up it asks the API server whether its identity may serve
    account b (a SelfSubjectAccessReview, the account policy's question), is told no, and exits
    with status 3 before it asks for the Lease. One log line names the account and the
    identity; a Warning Event AccountNotServed says the same in its namespace. It wrote
    nothing: no Lease, no claim, no pool status, no phone started, the binding untouched. Given
    its own identity again, the same binding runs."""
    a, b = accounts["a"], accounts["b"]
    pool_names.append("pool-b")
    kubectl.apply(pool("pool-b", "b", [b.namespace], 1))
    own = dict(b.env)
    home = a.env["PHONEFLEET_OPERATOR_NAMESPACE"]
    lease = f"refused-{b.namespace}"
    b.env.update(
        KUBECONFIG=a.env["KUBECONFIG"],
        PHONEFLEET_OPERATOR_NAMESPACE=home,
        PHONEFLEET_LEADER_ELECTION="true",
        PHONEFLEET_LEASE_NAME=lease,
    )
    name = bind(kubectl, b, 0)
    b.start()

    def exited() -> None:
        assert b.process is not None
        b.process.check_running()

    with pytest.raises(ProcessExited) as ended:
        wait_for(exited, 60, message=lambda: f"b's operator to refuse\n{b.log()}")
    assert ended.value.returncode == 3, ended.value.log_tail
    refusal = (
        "Refused to serve account b: system:serviceaccount:phonefleet-a:phonefleet-operator "
        'may not serve it (no "serve" on accounts.phonefleet.dev/b)'
    )
    assert refusal in ended.value.log_tail
    events = [e for e in kubectl.list("events", home) if e.get("reason") == "AccountNotServed"]
    assert any(refusal in e["message"] for e in events), events
    assert kubectl.get("lease", lease, home) is None
    assert claim(kubectl, b.phones[0]) is None
    assert not b.running()
    assert not (kubectl.get("phonepool", "pool-b") or {}).get("status")
    assert not (kubectl.get("phonebinding", name, b.namespace) or {}).get("status")

    b.stop()
    b.env.clear()
    b.env.update(own)
    b.start()
    wait_phase(kubectl, b.namespace, name, "Running", timeout=90)
    found = claim(kubectl, b.phones[0])
    assert found is not None
    assert found["metadata"]["labels"]["phonefleet.dev/account"] == "b"
