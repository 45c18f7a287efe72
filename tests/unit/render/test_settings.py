"""Specifications of the operator settings that drive rendering: defaults, environment, checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from phonefleet_operator.settings import OperatorSettings


def test_defaults_are_the_documented_ones() -> None:
    """Images, ports, uids, resources and grace period default as documented."""
    settings = OperatorSettings()

    assert settings.worker_image == "ghcr.io/phonefleet/worker:0.1.0"
    assert settings.appium_image == "appium/appium:v3.1.0-p0"
    assert settings.worker_image_pull_policy == "IfNotPresent"
    assert (settings.appium_port, settings.worker_probe_port, settings.appium_system_port) == (
        4723,
        8080,
        8200,
    )
    assert settings.run_as_user == 1000
    assert settings.termination_grace_seconds == 30
    assert settings.worker_resources.requests == {"cpu": "50m", "memory": "128Mi"}
    assert settings.worker_resources.limits == {"memory": "256Mi"}
    assert settings.appium_resources.requests == {"cpu": "200m", "memory": "512Mi"}
    assert settings.appium_resources.limits == {"memory": "1Gi"}


def test_every_setting_is_described() -> None:
    """Each field says what it does (the operator's --help and docs list these)."""
    undocumented = [n for n, f in OperatorSettings.model_fields.items() if not f.description]

    assert undocumented == []


def test_settings_come_from_phonefleet_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """PHONEFLEET_* variables set fields; structured ones are JSON."""
    monkeypatch.setenv("PHONEFLEET_WORKER_IMAGE", "registry.example/worker:2")
    monkeypatch.setenv("PHONEFLEET_RUN_AS_USER", "4242")
    monkeypatch.setenv("PHONEFLEET_APPIUM_RESOURCES", '{"requests": {"cpu": 1}}')

    settings = OperatorSettings()

    assert settings.worker_image == "registry.example/worker:2"
    assert settings.run_as_user == 4242
    assert settings.appium_resources.requests == {"cpu": "1"}


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"run_as_user": 0}, id="root"),
        pytest.param({"appium_run_as_user": 0}, id="appium-root"),
        pytest.param({"appium_port": 8080}, id="port-clash"),
        pytest.param({"worker_probe_port": 5037}, id="adb-port-clash"),
        pytest.param({"appium_port": 70000}, id="port-range"),
        pytest.param({"worker_image_pull_policy": "Sometimes"}, id="pull-policy"),
        pytest.param({"appium_home": "relative"}, id="relative-home"),
        pytest.param({"worker_resources": {"requests": {"cpu": "lots"}}}, id="bad-quantity"),
        # The active replica must give up before a standby may take over, or both work.
        pytest.param({"lease_renew_deadline_seconds": 15.0}, id="renew-deadline-not-shorter"),
        pytest.param({"lease_renew_deadline_seconds": 20.0}, id="renew-deadline-longer"),
        # The replica that lost the Lease stops between the two: it needs time for it.
        pytest.param({"lease_renew_deadline_seconds": 14.0}, id="no-time-to-stop"),
        # At least two renewals must fit before the deadline (client-go: 1.2 retry periods).
        pytest.param({"lease_retry_seconds": 9.0}, id="retry-nearly-the-deadline"),
    ],
)
def test_bad_settings_fail_at_start_up(overrides: dict[str, object]) -> None:
    """Root uids, clashing or out-of-range ports and bad values are refused when loading."""
    with pytest.raises(ValidationError):
        OperatorSettings(**overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("account", "configuration"),
    [("default", "phonefleet.dev"), ("shop-b", "shop-b.phonefleet.dev")],
)
def test_each_account_keeps_its_own_webhook_configuration(account: str, configuration: str) -> None:
    """Two accounts' operators never write the same ValidatingWebhookConfiguration."""
    assert OperatorSettings(account=account).webhook_configuration_name == configuration


@pytest.mark.parametrize("account", ["", "Shop", "shop_b", "-b", "a" * 33])
def test_an_account_name_must_be_a_short_label_value(account: str) -> None:
    """It becomes a label value and part of the webhook configuration's name."""
    with pytest.raises(ValidationError):
        OperatorSettings(account=account)
