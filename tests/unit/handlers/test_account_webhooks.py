"""Each account's webhooks review only the namespaces its operator serves (docs/accounts.md):
its configuration selects them, and a review from another namespace is admitted unreviewed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from phonefleet_operator.handlers.admission import (
    BINDING_WEBHOOK,
    JOB_WEBHOOK,
    reviewers,
    validating_webhooks,
)
from phonefleet_operator.services.accounts import AccountScope
from phonefleet_operator.settings import OperatorSettings


class Refusing:
    """A review that refuses everything and counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def review(self, namespace: str, *args: Any) -> list[str]:
        self.asked.append(namespace)
        return ["refused"]


@pytest.fixture
def replica() -> Any:
    """The parts of account a's operator, serving team-a."""
    return SimpleNamespace(
        scope=AccountScope.of("a", ["team-a"]), admission=Refusing(), jobs=Refusing()
    )


@pytest.mark.parametrize("webhook", [BINDING_WEBHOOK, JOB_WEBHOOK])
async def test_another_accounts_namespace_is_admitted_unreviewed(
    replica: Any, webhook: str
) -> None:
    """team-b is another operator's: this one admits at once and asks nothing (neither its
    Geelark account nor the other account's workers)."""
    assert await reviewers(replica)[webhook]("team-b", "x", {}) == []

    assert replica.admission.asked == replica.jobs.asked == []


@pytest.mark.parametrize("webhook", [BINDING_WEBHOOK, JOB_WEBHOOK])
async def test_its_own_namespace_is_reviewed(replica: Any, webhook: str) -> None:
    """team-a is its own: reviewed as before."""
    assert await reviewers(replica)[webhook]("team-a", "x", {}) == ["refused"]

    assert replica.admission.asked + replica.jobs.asked == ["team-a"]


def test_a_restricted_operators_webhooks_select_its_namespaces() -> None:
    """The API server sends it reviews of its namespaces only; unrestricted, of every one."""
    settings = OperatorSettings(webhook_host="127.0.0.1")
    selected = validating_webhooks(settings, "Q0E=", ["team-b", "team-a"])
    everywhere = validating_webhooks(settings, "Q0E=")

    for hook in selected:
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                }
            ]
        }
    assert all("namespaceSelector" not in hook for hook in everywhere)
