"""Two Geelark accounts in one cluster, one operator each (docs/accounts.md).

Each operator runs as its own process (the ``phonefleet-operator`` console script) with its own
Geelark simulator (its account), ``PHONEFLEET_ACCOUNT`` and ``--namespace``, on one control
plane. PhoneClaims are cluster-scoped: the tests show that one account's orphan sweep, restarts
and releases never touch the other account's claims or phones, and that claims made before
claims carried their account are neither released nor left without an owner by an upgrade.

Account b's phone ids sort before account a's, so an operator that swept every claim in the
cluster would reach b's claims first.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from phonefleet_operator.render import pod_name
from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.rbac import install_account_identity
from phonefleet_testbed.scenarios import make_binding, operator_env, wait_phase
from phonefleet_testbed.waiting import wait_for

ACCOUNT_LABEL = "phonefleet.dev/account"
#: Geelark ids are unique per account only; these differ so that both fleets can run.
IDS = {
    "a": ["710000000000000001", "710000000000000002"],
    "b": ["700000000000000001", "700000000000000002"],
}


@dataclass
class Account:
    """One Geelark account: its simulator, its namespace and its operator process."""

    name: str
    namespace: str
    simulator: GeelarkSimulator
    env: dict[str, str]
    workdir: Path
    process: ManagedProcess | None = None
    phones: list[str] = field(default_factory=list)
    more_namespaces: list[str] = field(default_factory=list)
    """Namespaces its operator serves besides its own (a --namespace each)."""

    def start(self) -> None:
        """Start its operator (a new process each time: a restart runs the sweep again)."""
        assert self.process is None
        self.process = ManagedProcess(
            f"operator-{self.name}",
            [
                str(Path(sys.executable).with_name("phonefleet-operator")),
                "--namespace",
                self.namespace,
                *(f"--namespace={namespace}" for namespace in self.more_namespaces),
                f"--liveness=http://127.0.0.1:{free_port()}/healthz",
            ],
            self.workdir,
            env=self.env,
        )
        self.process.start()

    def stop(self) -> None:
        """Stop its operator (SIGTERM, as a pod's)."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    def running(self) -> set[str]:
        """Phones of this account that are on."""
        return set(self.simulator.admin.running_phone_ids())

    def log(self) -> str:
        """The tail of its operator's log, for failure messages."""
        return self.process.log_tail() if self.process else "(operator stopped)"


def bind(kubectl: Kubectl, account: Account, index: int) -> str:
    """Bind the account's phone ``index`` in its namespace; returns the binding's name."""
    name = f"{account.name}-{index}"
    kubectl.apply(make_binding(name, account.phones[index], account.namespace))
    return name


def claim(kubectl: Kubectl, phone_id: str) -> dict[str, Any] | None:
    """The PhoneClaim on ``phone_id`` as the API server has it now."""
    return kubectl.get("phoneclaim", phone_id)


def force_delete(kubectl: Kubectl, account: Account, name: str) -> None:
    """Delete a binding past its finalizer (its operator is down), as a person in a hurry
    would; its worker pod then goes by garbage collection, and its claim is an orphan."""
    kubectl("delete", "phonebinding", name, "-n", account.namespace, "--wait=false")
    kubectl(
        "patch", "phonebinding", name, "-n", account.namespace,
        "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
    )  # fmt: skip
    wait_for(
        lambda: kubectl.get("pod", pod_name(name), account.namespace) is None,
        60,
        message=f"the worker pod of {name} to be garbage-collected",
    )


@pytest.fixture
def accounts(
    control_plane: ControlPlane, operator_credentials: Path, kubectl: Kubectl
) -> Iterator[dict[str, Account]]:
    """Accounts a and b, each with a simulator of two phones, a namespace and its operator's
    identity (``operator_credentials``: the shared manifests/rbac first); operators are
    started by the test. Afterwards every binding is released through its own operator and no
    phone of either account may be left running."""
    workdir = Path(tempfile.mkdtemp(prefix="phonefleet-accounts-"))
    config = SimulatorConfig(phones=0, boot_seconds=0.3, adb_enable_seconds=0.1)
    made: dict[str, Account] = {}
    with GeelarkSimulator(config) as sim_a, GeelarkSimulator(config) as sim_b:
        for name, simulator in (("a", sim_a), ("b", sim_b)):
            namespace = f"account-{name}-{free_port()}"
            kubectl("create", "namespace", namespace)
            # Each account's operator runs as its own ServiceAccount (manifests/accounts/second
            # for the account), which the account policy lets write only its account's claims.
            identity, home = install_account_identity(control_plane, name, [namespace])
            env = {
                **operator_env(control_plane, simulator),
                "KUBECONFIG": str(identity),
                "PHONEFLEET_OPERATOR_NAMESPACE": home,
                "PHONEFLEET_ACCOUNT": name,
                "PHONEFLEET_ORPHAN_SWEEP_SECONDS": "2",
            }
            account = Account(name, namespace, simulator, env, workdir)
            for i, phone_id in enumerate(IDS[name]):
                simulator.admin.create_phone(f"{name}-phone-{i}", phone_id=phone_id)
                account.phones.append(phone_id)
            made[name] = account
        wait_for(
            lambda: all(
                kubectl.get("serviceaccount", "default", a.namespace) for a in made.values()
            ),
            30,
            message="ServiceAccount default in the accounts' namespaces",
        )
        try:
            yield made
            for account in made.values():
                if account.process is None:
                    account.start()
                kubectl("delete", "phonebindings", "--all", "-n", account.namespace, "--wait=false")
            for account in made.values():
                wait_for(
                    lambda a=account: not kubectl.list("phonebindings", a.namespace),  # type: ignore[misc]
                    90,
                    message=lambda a=account: f"bindings of {a.name} released\n{a.log()}",  # type: ignore[misc]
                )
            for account in made.values():
                assert not account.running(), f"phones of {account.name} left running"
        finally:
            for account in made.values():
                account.stop()
                kubectl("delete", "namespace", account.namespace, "--wait=false", check=False)
            for phone_id in IDS["a"] + IDS["b"]:
                kubectl("delete", "phoneclaim", phone_id, "--ignore-not-found", "--wait=false")
            shutil.rmtree(workdir, ignore_errors=True)


def converge(kubectl: Kubectl, accounts: dict[str, Account], count: int) -> dict[str, str]:
    """Start both operators, bind the first ``count`` phones of each account and wait until
    they all run; returns each claim's uid by phone id."""
    for account in accounts.values():
        account.start()
    names = [(a, bind(kubectl, a, i)) for a in accounts.values() for i in range(count)]
    for account, name in names:
        wait_phase(kubectl, account.namespace, name, "Running", timeout=90)
    uids = {}
    for account in accounts.values():
        assert account.running() == set(account.phones[:count])
        for phone_id in account.phones[:count]:
            found = claim(kubectl, phone_id)
            assert found is not None
            assert found["metadata"]["labels"][ACCOUNT_LABEL] == account.name
            uids[phone_id] = found["metadata"]["uid"]
    return uids


def test_one_accounts_restart_and_releases_leave_the_other_accounts_claims_and_phones(
    kubectl: Kubectl, accounts: dict[str, Account]
) -> None:
    """Both fleets converge side by side. With both operators down, one binding of each
    account is deleted past its finalizer (its claim an orphan, its phone still on). Operator
    a comes back: its sweep stops a's orphaned phone and deletes its claim, and leaves b's
    orphaned claim and running phone to b. Operator b comes back and releases its own. Deleting
    a's bindings afterwards leaves b's binding, claim and phone as they were."""
    a, b = accounts["a"], accounts["b"]
    uids = converge(kubectl, accounts, 2)
    pod_b = kubectl.get("pod", pod_name("b-0"), b.namespace)
    assert pod_b is not None

    a.stop()
    b.stop()
    force_delete(kubectl, a, "a-1")
    force_delete(kubectl, b, "b-1")

    a.start()
    wait_for(
        lambda: claim(kubectl, a.phones[1]) is None and a.phones[1] not in a.running(),
        60,
        message=lambda: f"a's sweep to release its orphan\n{a.log()}",
    )
    orphan_b = claim(kubectl, b.phones[1])
    assert orphan_b is not None, f"a released b's claim\n{a.log()}"
    assert orphan_b["metadata"]["uid"] == uids[b.phones[1]]
    assert b.running() == set(b.phones), "a phone of b was stopped"

    b.start()
    wait_for(
        lambda: claim(kubectl, b.phones[1]) is None and b.phones[1] not in b.running(),
        60,
        message=lambda: f"b's sweep to release its orphan\n{b.log()}",
    )

    kubectl("delete", "phonebinding", "a-0", "-n", a.namespace, "--wait=false")
    wait_for(
        lambda: not kubectl.list("phonebindings", a.namespace) and not a.running(),
        60,
        message=lambda: f"a-0 released\n{a.log()}",
    )
    assert wait_phase(kubectl, b.namespace, "b-0", "Running")
    kept = claim(kubectl, b.phones[0])
    assert kept is not None
    assert kept["metadata"]["uid"] == uids[b.phones[0]]
    pod_now = kubectl.get("pod", pod_name("b-0"), b.namespace)
    assert pod_now is not None
    assert pod_now["metadata"]["uid"] == pod_b["metadata"]["uid"]
    assert b.running() == {b.phones[0]}


def test_an_upgrade_releases_no_claim_an_older_version_made(
    kubectl: Kubectl, accounts: dict[str, Account]
) -> None:
    """Claims without an account label, as older versions made them: a live binding's claim in
    a's namespace, and an orphan in b's whose phone is on. The upgraded operator a labels its
    own claim (its binding runs on, the claim and the phone untouched) and leaves b's orphan
    alone; the upgraded operator b releases that orphan as the older version would have: the
    phone stopped, then the claim deleted."""
    a, b = accounts["a"], accounts["b"]
    uids = converge(kubectl, accounts, 1)
    a.stop()
    b.stop()
    for phone_id in (a.phones[0], b.phones[0]):
        kubectl("label", "phoneclaim", phone_id, f"{ACCOUNT_LABEL}-")
    force_delete(kubectl, b, "b-0")

    a.start()
    wait_for(
        lambda: (
            ((claim(kubectl, a.phones[0]) or {}).get("metadata") or {})
            .get("labels", {})
            .get(ACCOUNT_LABEL)
            == "a"
        ),
        60,
        message=lambda: f"a to label its claim made by an older version\n{a.log()}",
    )
    adopted = claim(kubectl, a.phones[0])
    assert adopted is not None
    assert adopted["metadata"]["uid"] == uids[a.phones[0]]
    assert wait_phase(kubectl, a.namespace, "a-0", "Running")
    assert a.running() == {a.phones[0]}
    orphan = claim(kubectl, b.phones[0])
    assert orphan is not None, f"a released b's claim\n{a.log()}"
    assert ACCOUNT_LABEL not in orphan["metadata"].get("labels", {})
    assert b.running() == {b.phones[0]}

    b.start()
    wait_for(
        lambda: claim(kubectl, b.phones[0]) is None and not b.running(),
        60,
        message=lambda: f"b's sweep to release the older version's orphan\n{b.log()}",
    )
    assert (
        json.loads(kubectl("get", "phonebindings", "-n", b.namespace, "-o", "json").stdout)["items"]
        == []
    )


def check_webhook(kubectl: Kubectl, account: Account) -> None:
    """The account's configuration selects its namespace only, and its webhook refuses a second
    binding for its held phone 0 there, naming the holder."""
    name = f"{account.name}.phonefleet.dev"
    config = wait_for(
        lambda: kubectl.get("validatingwebhookconfiguration", name),
        60,
        message=lambda: f"{name} registered\n{account.log()}",
    )
    for hook in config["webhooks"]:
        assert hook["namespaceSelector"]["matchExpressions"] == [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [account.namespace]}
        ]
    duplicate = json.dumps(make_binding("duplicate", account.phones[0], account.namespace))

    def refused() -> str | None:
        result = kubectl("apply", "--dry-run=server", "-f", "-", input_text=duplicate, check=False)
        return result.stderr if "already held" in result.stderr else None

    stderr = wait_for(refused, 60, message=lambda: f"{name} to refuse\n{account.log()}")
    assert f"{account.name}-0" in stderr


def test_each_accounts_webhook_reviews_only_its_own_namespaces(
    kubectl: Kubectl, accounts: dict[str, Account]
) -> None:
    """Each operator registers its own ValidatingWebhookConfiguration (<account>.phonefleet.dev),
    selecting only the namespaces it serves; in each namespace a second binding for a phone
    already held is refused by that namespace's account, which knows the phone."""
    configurations = [f"{name}.phonefleet.dev" for name in accounts]
    try:
        for account in accounts.values():
            account.env.update(
                PHONEFLEET_WEBHOOK_ENABLED="true",
                PHONEFLEET_WEBHOOK_ADDR="127.0.0.1",
                PHONEFLEET_WEBHOOK_HOST="127.0.0.1",
                PHONEFLEET_WEBHOOK_SERVICE="",
                PHONEFLEET_WEBHOOK_PORT=str(free_port()),
            )
        converge(kubectl, accounts, 1)
        for account in accounts.values():
            check_webhook(kubectl, account)
    finally:
        for name in configurations:
            kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
