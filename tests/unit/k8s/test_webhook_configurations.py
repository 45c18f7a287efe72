"""WebhookConfigurations.ensure_validating: create, patch on "exists", and create again when
the configuration was deleted between the two (409 then 404), a bounded number of times."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from kubernetes import client
from test_api_answers import Answer, ScriptedWrites

from phonefleet_operator.errors import KubernetesUnavailable
from phonefleet_operator.k8s.api import ApiCaller, Conflict, NotFound
from phonefleet_operator.k8s.webhooks import WebhookConfigurations

WEBHOOKS = [{"name": "bindings.phonefleet.dev"}]


class ConfigurationWrites(ScriptedWrites):
    """The admissionregistration API of a client: creates and patches answer in the order
    given, and the calls are recorded."""

    @property
    def create_validating_webhook_configuration(self) -> Callable[..., Answer]:
        return self.answer("create_validating_webhook_configuration")

    @property
    def patch_validating_webhook_configuration(self) -> Callable[..., Answer]:
        return self.answer("patch_validating_webhook_configuration")


@pytest.fixture
async def caller() -> AsyncIterator[ApiCaller]:
    api = ApiCaller(client.ApiClient(), 1)
    yield api
    api.close()


def configurations(caller: ApiCaller, writes: ConfigurationWrites) -> WebhookConfigurations:
    made = WebhookConfigurations(caller)
    made._api = writes  # type: ignore[assignment]
    return made


@pytest.mark.parametrize(
    ("statuses", "calls"),
    [
        pytest.param((200,), ["create"], id="created"),
        pytest.param((Conflict, 200), ["create", "patch"], id="patched"),
        # Made by another replica, deleted (an uninstall, a helper) before our patch.
        pytest.param((Conflict, NotFound, 200), ["create", "patch", "create"], id="made-again"),
    ],
)
async def test_the_configuration_is_created_or_patched_whatever_happened_between(
    caller: ApiCaller, statuses: tuple[int, ...], calls: list[str]
) -> None:
    """Before, the patch's 404 reached the webhook's start-up as a raw ApiException, which its
    retry (for PhonefleetError) did not catch."""
    writes = ConfigurationWrites(*statuses)
    await configurations(caller, writes).ensure_validating("phonefleet.dev", WEBHOOKS)
    assert writes.calls == calls


async def test_a_configuration_that_keeps_going_is_a_temporary_fault_not_a_loop(
    caller: ApiCaller,
) -> None:
    """Made and deleted by someone else again and again: given up after a bound number of
    rounds, as a KubernetesUnavailable the start-up tries again later."""
    writes = ConfigurationWrites(*[Conflict, NotFound] * 10)
    with pytest.raises(KubernetesUnavailable, match=r"phonefleet\.dev"):
        await configurations(caller, writes).ensure_validating("phonefleet.dev", WEBHOOKS)
    assert len(writes.calls) <= 6
