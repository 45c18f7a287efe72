"""Each account's webhooks review only the namespaces its operator serves: kopf's managed
webhook configuration has no namespaceSelector, so every account's webhook is called for every
PhoneBinding and PhoneJob (docs/accounts.md)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from phonefleet_operator.handlers.admission import validate_binding
from phonefleet_operator.handlers.jobs import validate_job
from phonefleet_operator.services.accounts import AccountScope


class Refusing:
    """A review that refuses everything and counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def review(self, namespace: str, *args: Any) -> list[str]:
        self.asked.append(namespace)
        return ["refused"]


@pytest.fixture
def memo() -> Any:
    """The runtime of account a's operator, serving team-a."""
    runtime = SimpleNamespace(
        scope=AccountScope.of("a", ["team-a"]), admission=Refusing(), jobs=Refusing()
    )
    return SimpleNamespace(runtime=runtime)


@pytest.mark.parametrize("handler", [validate_binding, validate_job])
async def test_another_accounts_namespace_is_admitted_unreviewed(memo: Any, handler: Any) -> None:
    """team-b is another operator's: this one admits at once and asks nothing (neither its
    Geelark account nor the other account's workers)."""
    await handler(spec={}, name="x", namespace="team-b", memo=memo)

    assert memo.runtime.admission.asked == memo.runtime.jobs.asked == []


@pytest.mark.parametrize("handler", [validate_binding, validate_job])
async def test_its_own_namespace_is_reviewed(memo: Any, handler: Any) -> None:
    """team-a is its own: reviewed as before."""
    with pytest.raises(kopf.AdmissionError):
        await handler(spec={}, name="x", namespace="team-a", memo=memo)

    assert memo.runtime.admission.asked + memo.runtime.jobs.asked == ["team-a"]
