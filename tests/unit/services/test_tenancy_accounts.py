"""PhonePools with several Geelark accounts: each account's operator judges bindings by, counts
against and writes the status of its own account's pools only (docs/tenancy.md, "Several
Geelark accounts"). Two operators share one fake pool store with the API server's
resourceVersion semantics; each has its own Geelark account (phones), claims and namespaces."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
from fakes import FakeKube, FakePhones
from pool_fakes import Catalog, FakePoolStore

from conftest import NOW, step
from phonefleet_operator.geelark import Phone
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.tenancy import PoolReporter, Quota, Tenancy, TenancyView
from phonefleet_operator.settings import OperatorSettings

_created = itertools.count(1)


class Operator:
    """One account's operator over the shared pool store: its own Geelark phones (group acme,
    like the other account's: groups are per account), claims and namespaces."""

    def __init__(
        self,
        store: FakePoolStore,
        account: str,
        namespaces: tuple[str, ...],
        phones: int,
        **settings: Any,
    ) -> None:
        self.account = account
        self.namespace = namespaces[0]
        self.phones = FakePhones()
        for i in range(phones):
            phone_id = f"{account}-{i}"
            self.phones.add(phone_id, f"phone-{i}")
            self.phones.phones[phone_id] = Phone(
                id=phone_id, serial_name=f"phone-{i}", group_name="acme"
            )
        self.kube = FakeKube()
        self.woken: list[str] = []
        claims = ObservedClaims()
        self.settings = OperatorSettings(account=account, **settings)
        scope = AccountScope.of(account, namespaces)
        self.tenancy = Tenancy(
            view=TenancyView(account),
            quota=Quota(store),
            store=store,
            directory=self.phones,
            claims=claims,
            settings=self.settings,
            wake=self.woken.append,
            scope=scope,
        )
        self.reconciler = BindingReconciler(
            directory=self.phones,
            power=self.phones,
            kube=self.kube,
            claims=ClaimService(self.kube, claims, scope=scope),
            settings=self.settings,
            clock=lambda: NOW,
            tenancy=self.tenancy,
        )

        async def exists(namespace: str, name: str, uid: str) -> bool:
            return True

        self.reporter = PoolReporter(self.tenancy, Catalog(self.phones), exists, clock=lambda: NOW)

    def binding(self, name: str, phone: str) -> PhoneBinding:
        """A binding in this operator's first namespace, a little younger than the last."""
        n = next(_created)
        return PhoneBinding.from_body(
            {
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "uid": f"uid-{self.account}-{name}",
                    "generation": 1,
                    "creationTimestamp": f"2026-11-28T11:00:{n % 60:02d}Z",
                },
                "spec": {"phoneId": phone},
            }
        )

    async def step(self, binding: PhoneBinding) -> PhoneBinding:
        """One pass; the binding's view entry follows its status, as the watch would."""
        after, _, _ = await step(self.reconciler, binding)
        self.tenancy.view.saw_binding(after.to_dict())
        return after

    def watch(self, store: FakePoolStore) -> None:
        """Deliver every pool as the pools watch would."""
        for body in store.pools.values():
            self.tenancy.pool_event("MODIFIED", body)


def admitted(binding: PhoneBinding) -> tuple[str | None, str | None]:
    """The Admitted condition's (status, reason)."""
    found = next((c for c in binding.status.conditions if c.type == "Admitted"), None)
    return (found.status, found.reason) if found else (None, None)


@pytest.fixture
def store() -> FakePoolStore:
    """Namespaces team-a (account a's) and team-b (account b's)."""
    fake = FakePoolStore()
    fake.namespaces = {"team-a": {}, "team-b": {}}
    return fake


def _pool(store: FakePoolStore, name: str, **spec: Any) -> None:
    """A pool of Geelark group acme (every phone of every account here is in it)."""
    store.create(name, phones={"groups": ["acme"]}, **spec)


def two_pools(store: FakePoolStore) -> None:
    """pool-a of account a and pool-b of account b: the same group (acme), maxRunning 1 each."""
    _pool(store, "pool-a", max_running=1, account="a", namespaces={"names": ["team-a"]})
    _pool(store, "pool-b", max_running=1, account="b", namespaces={"names": ["team-b"]})


async def test_each_operator_judges_and_counts_only_its_own_accounts_pool(
    store: FakePoolStore,
) -> None:
    """Both pools select Geelark group acme, which exists in both accounts: neither operator
    sees an overlap; each admits one binding into its own pool's single slot and queues the
    next; a pool's holders are its own account's bindings only."""
    two_pools(store)
    a = Operator(store, "a", ("team-a",), phones=2)
    b = Operator(store, "b", ("team-b",), phones=2)

    a0 = await a.step(a.binding("a0", "phone-0"))
    b0 = await b.step(b.binding("b0", "phone-0"))
    a1 = await a.step(a.binding("a1", "phone-1"))
    b1 = await b.step(b.binding("b1", "phone-1"))

    assert (a0.status.phase, a0.status.pool) == ("Bound", "pool-a")
    assert (b0.status.phase, b0.status.pool) == ("Bound", "pool-b")
    assert (a1.status.phase, a1.status.queue_position) == ("Queued", 1)
    assert (b1.status.phase, b1.status.queue_position) == ("Queued", 1)
    assert [h["uid"] for h in store.pools["pool-a"]["status"]["holders"]] == [a0.uid]
    assert [h["uid"] for h in store.pools["pool-b"]["status"]["holders"]] == [b0.uid]
    assert set(a.tenancy.view.pools) == {"pool-a"}
    assert set(a.tenancy.view.foreign) == {"pool-b"}
    assert set(a.kube.claims) == {"a-0"}
    assert set(b.kube.claims) == {"b-0"}


async def test_each_operator_writes_the_status_of_its_own_accounts_pools_only(
    store: FakePoolStore,
) -> None:
    """Account a has 3 phones, b has 2: each reporter writes PHONES (and the rest) of its own
    pool and never touches the other's, however often both report."""
    two_pools(store)
    a = Operator(store, "a", ("team-a",), phones=3)
    b = Operator(store, "b", ("team-b",), phones=2)
    await a.step(a.binding("a0", "phone-0"))
    await b.step(b.binding("b0", "phone-0"))
    for operator in (a, b):
        operator.watch(store)

    for _ in range(2):
        await a.reporter.report_once()
        await b.reporter.report_once()
        for operator in (a, b):
            operator.watch(store)

    pool_a, pool_b = store.pools["pool-a"]["status"], store.pools["pool-b"]["status"]
    assert (pool_a["phones"], pool_a["running"], pool_a["namespaces"]) == (3, 1, "team-a")
    assert (pool_b["phones"], pool_b["running"], pool_b["namespaces"]) == (2, 1, "team-b")
    assert pool_a["overlapping"] == pool_b["overlapping"] == []
    assert store.conflicts == 0  # nobody wrote a pool another operator was writing


async def test_a_pool_without_an_account_is_the_default_accounts_as_before(
    store: FakePoolStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Upgrade: a pool made before pools named their account is judged by an operator without
    PHONEFLEET_ACCOUNT exactly as before, and by no other account's operator (for which tenancy
    stays off)."""
    _pool(store, "legacy", max_running=1, namespaces={"names": ["team-a", "team-b"]})
    default = Operator(store, "default", ("team-a",), phones=2)
    other = Operator(store, "b", ("team-b",), phones=2)
    caplog.set_level(logging.INFO)

    first = await default.step(default.binding("first", "phone-0"))
    second = await default.step(default.binding("second", "phone-1"))
    elsewhere = await other.step(other.binding("elsewhere", "phone-0"))

    assert (first.status.phase, first.status.pool) == ("Bound", "legacy")
    assert second.status.phase == "Queued"
    assert (elsewhere.status.phase, elsewhere.status.pool) == ("Bound", None)
    assert "Tenancy is off: no PhonePool of account b exists" in caplog.text
    assert [h["uid"] for h in store.pools["legacy"]["status"]["holders"]] == [first.uid]


async def test_a_namespace_offered_by_another_accounts_pool_is_told_why_it_gets_no_phone(
    store: FakePoolStore,
) -> None:
    """pool-b (account b) lists team-a, which account a's operator serves. A binding in team-a
    for a phone account a does not have is Forbidden with reason PoolOfAnotherAccount, naming
    pool-b, even though account a has no pool (tenancy off there); a phone account a has is
    bound as before. The message is the same for a phone that exists in account b or nowhere."""
    _pool(store, "pool-b", account="b", namespaces={"names": ["team-a", "team-b"]})
    a = Operator(store, "a", ("team-a",), phones=1)

    ours = await a.step(a.binding("ours", "phone-0"))
    theirs = await a.step(a.binding("theirs", "phone-1"))  # account b's phone-1
    nowhere = await a.step(a.binding("nowhere", "phone-9"))

    assert ours.status.phase == "Bound"
    assert theirs.status.phase == "Forbidden"
    assert admitted(theirs) == ("False", "PoolOfAnotherAccount")
    message = theirs.status.message or ""
    assert "PhonePool pool-b (account b)" in message
    assert "served by the operator of account a" in message
    assert (nowhere.status.message or "").replace("phone-9", "X") == message.replace("phone-1", "X")
    assert a.kube.claims.keys() == {"a-0"}


async def test_the_webhook_refuses_with_the_same_account_hint_when_tenancy_is_on(
    store: FakePoolStore,
) -> None:
    """With a pool of its own, account a's webhook refuses a team-a binding of a phone it does
    not have, and names the other account's pool that offers team-a phones."""
    _pool(store, "pool-a", account="a", namespaces={"names": ["team-a"]})
    _pool(store, "pool-b", account="b", namespaces={"names": ["team-a"]})
    a = Operator(store, "a", ("team-a",), phones=1)

    refusal = await a.tenancy.refusal("team-a", a.binding("x", "phone-7").spec)

    assert refusal is not None
    assert "PhonePool pool-b (account b)" in refusal
    assert await a.tenancy.refusal("team-a", a.binding("y", "phone-0").spec) is None


async def test_another_accounts_pool_change_wakes_only_refused_bindings(
    store: FakePoolStore,
) -> None:
    """A change of account b's pool cannot change anything for account a's admitted bindings:
    only its Forbidden ones are judged again (their message may name the pool)."""
    _pool(store, "pool-a", account="a", namespaces={"names": ["team-a"]})
    _pool(store, "pool-b", account="b", namespaces={"names": ["team-b"]})
    a = Operator(store, "a", ("team-a",), phones=1)
    running = await a.step(a.binding("running", "phone-0"))
    refused = await a.step(a.binding("refused", "phone-5"))
    a.woken.clear()

    store.pools["pool-b"]["spec"]["namespaces"] = {"names": ["team-a", "team-b"]}
    a.tenancy.pool_event("MODIFIED", store.pools["pool-b"])
    woken_by_foreign = list(a.woken)
    a.woken.clear()
    store.pools["pool-a"]["spec"]["maxRunning"] = 5
    a.tenancy.pool_event("MODIFIED", store.pools["pool-a"])

    assert refused.status.phase == "Forbidden"
    assert woken_by_foreign == [refused.uid]
    assert set(a.woken) == {running.uid, refused.uid}


async def test_a_restricted_operator_says_which_namespaces_of_its_pool_it_does_not_serve(
    store: FakePoolStore,
) -> None:
    """pool-b names team-a (served by account a's operator) and team-b: NAMESPACES shows team-b
    only, and NamespacesServed=False names team-a. A label selector that also matches team-a is
    no mistake (one client, a pool in each account): True. An operator serving every namespace
    sets no such condition (a single-account cluster's pools look as before)."""
    store.namespaces = {"team-a": {"client": "acme"}, "team-b": {"client": "acme"}}
    _pool(store, "pool-b", account="b", namespaces={"names": ["team-a", "team-b"]})
    store.create(
        "pool-sel",
        account="b",
        phones={"groups": ["other"]},
        namespaces={"selector": {"matchLabels": {"client": "acme"}}},
    )
    _pool(store, "pool-all", namespaces={"names": ["team-a"]})
    b = Operator(store, "b", ("team-b",), phones=1)
    everywhere = Operator(store, "default", ("team-a",), phones=1)
    everywhere.tenancy.scope = AccountScope("default")  # no --namespace
    for operator in (b, everywhere):
        await operator.tenancy.is_on()
        operator.watch(store)

    await b.reporter.report_once()
    await everywhere.reporter.report_once()

    status = store.pools["pool-b"]["status"]
    served = next(c for c in status["conditions"] if c["type"] == "NamespacesServed")
    assert status["namespaces"] == "team-b"
    assert (served["status"], served["reason"]) == ("False", "NotServedByThisAccount")
    assert "team-a" in served["message"]
    assert "team-b" not in served["message"]
    by_selector = store.pools["pool-sel"]["status"]
    assert by_selector["namespaces"] == "team-b"
    assert [
        (c["status"], c["reason"])
        for c in by_selector["conditions"]
        if c["type"] == "NamespacesServed"
    ] == [("True", "AllServed")]
    unrestricted = store.pools["pool-all"]["status"]
    assert {c["type"] for c in unrestricted["conditions"]} == {"Overlapping"}


async def test_the_sweep_frees_a_holder_in_a_namespace_the_operator_does_not_serve(
    store: FakePoolStore,
) -> None:
    """A pool made before pools named their account, whose holders the default account's
    operator wrote, is then given to account b: b's sweep frees the holder in team-a (no
    binding there can run b's phones) and its own queued binding gets the slot."""
    _pool(store, "legacy", max_running=1, namespaces={"names": ["team-a", "team-b"]})
    default = Operator(store, "default", ("team-a",), phones=1)
    await default.step(default.binding("old", "phone-0"))
    store.pools["legacy"]["spec"]["account"] = "b"
    store.bump("legacy")
    b = Operator(store, "b", ("team-b",), phones=1)
    waiting = await b.step(b.binding("waiting", "phone-0"))
    b.watch(store)

    await b.reporter.report_once()
    admitted_now = await b.step(waiting)

    assert waiting.status.phase == "Queued"
    assert store.pools["legacy"]["status"]["holders"] == [
        {"namespace": "team-b", "name": "waiting", "uid": waiting.uid}
    ]
    assert admitted_now.status.phase == "Bound"


async def test_deleting_this_accounts_only_pool_wakes_every_binding_another_accounts_does_not(
    store: FakePoolStore,
) -> None:
    """Deleting account a's only pool turns its tenancy off: every binding is judged again.
    Deleting account b's pool changes nothing for a's admitted bindings."""
    _pool(store, "pool-a", account="a", namespaces={"names": ["team-a"]})
    _pool(store, "pool-b", account="b", namespaces={"names": ["team-b"]})
    a = Operator(store, "a", ("team-a",), phones=1)
    running = await a.step(a.binding("running", "phone-0"))
    a.woken.clear()

    a.tenancy.pool_event("DELETED", store.pools.pop("pool-b"))
    woken_by_foreign = list(a.woken)
    a.tenancy.pool_event("DELETED", store.pools.pop("pool-a"))

    assert woken_by_foreign == []
    assert a.woken == [running.uid]
    assert not await a.tenancy.is_on()
