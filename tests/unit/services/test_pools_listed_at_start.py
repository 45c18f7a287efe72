"""The pools gate's view is listed at start-up, before any binding's pass (services/runtime.py):
listed by the first pass, the list waited on the API threads behind every new binding's
finalizer write (docs/scale.md, Round 6a)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeKube, FakePhones
from pool_fakes import FakePoolStore

from conftest import make_binding, step
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.observed import ObservedClaims
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.services.tenancy import Quota, Tenancy, TenancyView
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings


class CountedStore(FakePoolStore):
    """The pool store, counting its LISTs."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0

    async def list_pools(self) -> list[dict[str, Any]]:
        self.lists += 1
        return await super().list_pools()


@pytest.fixture
async def runtime(kubeconfig: Path) -> AsyncIterator[Runtime]:
    """A runtime whose API server nobody serves (port 9)."""
    built = Runtime.create(
        OperatorSettings(kubeconfig=str(kubeconfig)),
        GeelarkSettings(url="http://127.0.0.1:9", token="unit-token", max_attempts=1),
    )
    yield built
    await built.close()


async def test_pools_listed_at_start_are_not_listed_again_by_the_first_pass(
    runtime: Runtime, kube: FakeKube, phones: FakePhones
) -> None:
    store = CountedStore()
    claims = ObservedClaims()
    tenancy = Tenancy(
        view=TenancyView(),
        quota=Quota(store),
        store=store,
        directory=phones,
        claims=claims,
        settings=OperatorSettings(),
        wake=lambda uid: None,
    )
    runtime.tenancy = tenancy
    await runtime.load_pools()
    assert tenancy.view.loaded
    assert store.lists == 1
    reconciler = BindingReconciler(
        directory=phones,
        power=phones,
        kube=kube,
        claims=ClaimService(kube, claims),
        settings=OperatorSettings(),
        tenancy=tenancy,
    )
    await step(reconciler, make_binding())
    assert "100" in kube.claims  # the pass went on to claim its phone
    assert store.lists == 1


async def test_a_list_that_fails_at_start_is_left_to_the_first_pass(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    await runtime.load_pools()  # the API server does not answer: logged, not raised
    assert not runtime.tenancy.view.loaded
    assert "Could not list PhonePools at start-up" in caplog.text
