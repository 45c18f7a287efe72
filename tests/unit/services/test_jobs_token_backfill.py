"""The job token written into an ADB Secret that predates it (services/jobs/backfill.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fakes import FakeKube, FakePhones

from conftest import NOW, make_binding
from phonefleet_operator.geelark import PhoneStatus
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.services.jobs.backfill import TokenBackfill
from phonefleet_operator.services.jobs.tokens import JobTokens

KEY = bytes(range(32))


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def provisioned(binding: PhoneBinding, phone_id: str, *, at: str | None) -> PhoneBinding:
    """The binding with its phone resolved and (``at``) its ADB Secret written then."""
    body = binding.to_dict()
    body["status"] = {"phone": {"id": phone_id, "adbProvisionedAt": at}}
    return PhoneBinding.from_body(body)


def world(*, adb_on: bool = True) -> tuple[TokenBackfill, FakeKube, FakePhones, Clock]:
    """A backfill over fake Kubernetes and phones; phone-a runs, with ADB on (or not)."""
    kube, phones, clock = FakeKube(), FakePhones(), Clock()
    phones.add("phone-a", "serial-a", PhoneStatus.RUNNING)
    if adb_on:
        phones.adb_on.add("phone-a")
    backfill = TokenBackfill(power=phones, kube=kube, tokens=JobTokens(KEY), clock=clock)
    return backfill, kube, phones, clock


async def test_the_secret_is_written_again_with_the_same_adb_data_and_the_token() -> None:
    """No ADB switched on again; the token is the binding's; once per interval only."""
    backfill, kube, phones, clock = world()
    binding = provisioned(make_binding(), "phone-a", at="2026-11-28T11:00:00Z")

    assert await backfill.write(binding) is True

    secret = kube.secrets[("ns", "alpha-adb")]
    values = secret["stringData"]
    assert (values["ip"], values["port"], values["password"]) == ("10.1.2.3", "5555", "pw-123456")
    assert values["jobToken"] == JobTokens(KEY).token_for("ns", "alpha", binding.uid)
    assert phones.count("enable_adb") == 0
    assert secret["metadata"]["ownerReferences"][0]["uid"] == binding.uid

    kube.secrets.clear()
    assert await backfill.write(binding) is True  # written a moment ago: the kubelet is slow
    assert not kube.secrets
    clock.now += timedelta(minutes=3)
    assert await backfill.write(binding) is True
    assert ("ns", "alpha-adb") in kube.secrets


async def test_nothing_is_written_before_the_first_provisioning_or_while_adb_is_down() -> None:
    """The provisioning writes the token then; no Secret is made out of nothing here."""
    backfill, kube, phones, _ = world(adb_on=False)
    never = provisioned(make_binding(), "phone-a", at=None)
    down = provisioned(make_binding("bravo"), "phone-a", at="2026-11-28T11:00:00Z")

    assert await backfill.write(never) is False
    assert phones.count("adb_endpoint") == 0
    assert await backfill.write(down) is False
    assert not kube.secrets
