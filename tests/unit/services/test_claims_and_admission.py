"""Claims (the lock) and admission decisions, against in-memory gateways."""

from __future__ import annotations

import pytest
from fakes import FakeKube, FakePhones

from conftest import make_binding
from phonefleet_operator.models import PhoneBindingSpec
from phonefleet_operator.render import build_claim
from phonefleet_operator.services.admission import AdmissionService, spec_problems
from phonefleet_operator.services.claims import ClaimService
from phonefleet_operator.services.reconcile import binding_ref


async def test_a_claim_whose_holder_is_gone_is_released_and_taken(kube: FakeKube) -> None:
    """A claim recording a uid that no binding has any more does not block the phone."""
    ghost, heir = make_binding("ghost"), make_binding("heir")
    await kube.create_claim(build_claim(ghost, "100", "phone-a"))
    kube.bindings[("ns", "heir")] = {"metadata": {"uid": heir.uid}}
    result = await ClaimService(kube).acquire(
        binding_ref(heir), "100", build_claim(heir, "100", "phone-a"), ()
    )
    assert result.held
    assert kube.claims["100"]["spec"]["holder"]["name"] == "heir"


async def test_a_claim_of_a_recreated_binding_with_the_same_name_is_an_orphan(
    kube: FakeKube, phones: FakePhones
) -> None:
    """Same namespace/name but another uid means the holder is gone: its claim is released (and,
    with the default releasePolicy Stop, its phone stopped)."""
    old, new = make_binding("same"), make_binding("same")
    await kube.create_claim(build_claim(old, "100", "phone-a"))
    kube.bindings[("ns", "same")] = {"metadata": {"uid": new.uid}}
    assert (await ClaimService(kube, power=phones).release_orphans()) == ["100"]
    assert not kube.claims
    assert phones.calls == [("stop", "100")]


async def test_release_deletes_only_a_claim_this_binding_holds(kube: FakeKube) -> None:
    """release() by a non-holder is a no-op."""
    holder, other = make_binding("holder"), make_binding("other")
    await kube.create_claim(build_claim(holder, "100", "phone-a"))
    claims = ClaimService(kube)
    assert not await claims.release(binding_ref(other), "100")
    assert await claims.release(binding_ref(holder), "100")
    assert not kube.claims


@pytest.mark.parametrize(
    ("worker", "problem"),
    [
        ({"args": ["--phone-id", "1"]}, "spec.worker.args must not set --phone-id"),
        ({"args": ["--adb-secret-dir=/x"]}, "spec.worker.args must not set --adb-secret-dir"),
        (
            {"env": [{"name": "PHONEFLEET_WORKER_PHONE_ID", "value": "1"}]},
            "spec.worker.env must not set PHONEFLEET_WORKER_PHONE_ID",
        ),
    ],
    ids=["phone-id", "secret-dir", "env"],
)
def test_specs_that_would_redirect_the_worker_are_problems(
    worker: dict[str, object], problem: str
) -> None:
    """Overriding what the operator derives from the claim is refused."""
    spec = PhoneBindingSpec.model_validate({"phoneId": "p", "worker": worker})
    problems = spec_problems(spec)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_ordinary_worker_args_are_fine() -> None:
    """Extra args and env that do not touch the phone identity pass."""
    spec = PhoneBindingSpec.model_validate(
        {"phoneId": "p", "worker": {"args": ["--log-level", "debug"], "env": [{"name": "A"}]}}
    )
    assert spec_problems(spec) == []


async def test_admission_refuses_an_alias_of_a_held_phone_and_admits_the_holder(
    kube: FakeKube, phones: FakePhones
) -> None:
    """By id or by serialName, a phone held by a live binding is refused to everyone else."""
    holder = make_binding("holder", "phone-a")
    await kube.create_claim(build_claim(holder, "100", "phone-a"))
    kube.bindings[("ns", "holder")] = {"metadata": {"uid": holder.uid}}
    admission = AdmissionService(phones, kube)
    problems = await admission.review("ns", "intruder", {"phoneId": "100"})
    assert problems == [
        "phone 100 (phone-a) is already held by binding ns/holder (PhoneClaim 100); "
        "delete or suspend that binding first"
    ]
    assert await admission.review("ns", "holder", {"phoneId": "phone-a"}) == []


async def test_admission_admits_what_it_cannot_check(kube: FakeKube, phones: FakePhones) -> None:
    """An unknown phone is admitted (the status will say PhoneNotFound)."""
    assert await AdmissionService(phones, kube).review("ns", "x", {"phoneId": "nope"}) == []
