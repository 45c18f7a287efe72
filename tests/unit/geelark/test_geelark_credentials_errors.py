"""Specification that every settings error names the variable and the problem, never a value.

Each credential variable is set to a recognisable secret and every way the settings can be
refused is tried, through each entry point a person meets: the operator's command, kopf's
start-up handler, and the settings loader the CLI uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kopf
import pytest

from phonefleet_operator import main
from phonefleet_operator.settings import (
    GeelarkSettings,
    InvalidSettings,
    OperatorSettings,
    load_settings,
)

TOKEN = "tok-SECRET-0d15ea5e"
API_KEY = "sk-SECRET-5ca1ab1e"
APP_ID = "app-SECRET-c0ffee"
SECRETS = (TOKEN, API_KEY, APP_ID)

#: (environment, the variable the message must name): each a way the settings are refused.
BROKEN: dict[str, tuple[dict[str, str], str]] = {
    "api key without app id": (
        {"PHONEFLEET_GEELARK_API_KEY": API_KEY},
        "PHONEFLEET_GEELARK_APP_ID",
    ),
    "app id without api key": (
        {"PHONEFLEET_GEELARK_APP_ID": APP_ID},
        "PHONEFLEET_GEELARK_API_KEY",
    ),
    "token and a bad number": (
        {"PHONEFLEET_GEELARK_TOKEN": TOKEN, "PHONEFLEET_GEELARK_TIMEOUT_SECONDS": "soon"},
        "PHONEFLEET_GEELARK_TIMEOUT_SECONDS",
    ),
    "key mode and a bad number": (
        {
            "PHONEFLEET_GEELARK_APP_ID": APP_ID,
            "PHONEFLEET_GEELARK_API_KEY": API_KEY,
            "PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE": "0",
        },
        "PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE",
    ),
    "every credential and bad operator JSON": (
        {
            "PHONEFLEET_GEELARK_TOKEN": TOKEN,
            "PHONEFLEET_GEELARK_APP_ID": APP_ID,
            "PHONEFLEET_GEELARK_API_KEY": API_KEY,
            "PHONEFLEET_WORKER_RESOURCES": "{not json",
        },
        "PHONEFLEET_WORKER_RESOURCES",
    ),
    "every credential and a bad operator choice": (
        {
            "PHONEFLEET_GEELARK_TOKEN": TOKEN,
            "PHONEFLEET_GEELARK_APP_ID": APP_ID,
            "PHONEFLEET_GEELARK_API_KEY": API_KEY,
            "PHONEFLEET_WORKER_IMAGE_PULL_POLICY": "Sometimes",
        },
        "PHONEFLEET_WORKER_IMAGE_PULL_POLICY",
    ),
}
CASES = pytest.mark.parametrize(("env", "variable"), BROKEN.values(), ids=list(BROKEN))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PHONEFLEET_* variable of the machine running the tests leaks into a case."""
    for name in os.environ:
        if name.startswith("PHONEFLEET_"):
            monkeypatch.delenv(name)
    return monkeypatch


def leaked(text: str) -> list[str]:
    """The secrets that appear in ``text``."""
    return [secret for secret in SECRETS if secret in text]


@CASES
def test_the_operator_command_names_the_variable_and_prints_no_secret(
    env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    """``phonefleet-operator`` with broken settings exits at once, naming only the variable."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    # No cluster to reach: whatever the operator prints, it prints before it could connect.
    clean["KUBECONFIG"] = str(tmp_path / "no-such-kubeconfig")
    done = subprocess.run(
        [sys.executable, "-c", "from phonefleet_operator.main import run; run()"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert leaked(output) == []
    assert variable in output
    assert done.returncode == 2


@CASES
async def test_the_startup_handler_fails_permanently_naming_only_the_variable(
    env: dict[str, str], variable: str, clean_env: pytest.MonkeyPatch
) -> None:
    """kopf's start-up handler (as KopfRunner and `kopf run` use it) says the same, no value."""
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(kopf.PermanentError) as refused:
        await main.configure(settings=kopf.OperatorSettings(), memo=kopf.Memo())
    assert leaked(str(refused.value) + repr(refused.value)) == []
    assert variable in str(refused.value)


@CASES
def test_loading_settings_raises_a_message_with_variables_never_values(
    env: dict[str, str], variable: str, clean_env: pytest.MonkeyPatch
) -> None:
    """``load_settings`` (used by every entry point) names variables; its error has no cause."""
    for name, value in env.items():
        clean_env.setenv(name, value)
    kind = GeelarkSettings if variable.startswith("PHONEFLEET_GEELARK_") else OperatorSettings
    with pytest.raises(InvalidSettings) as refused:
        load_settings(kind)
    assert leaked(str(refused.value) + repr(refused.value)) == []
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None
    assert variable in str(refused.value)


def test_missing_credentials_name_the_variables_and_the_secret_they_come_from(
    clean_env: pytest.MonkeyPatch,
) -> None:
    """No credential at all: the message says which variables to set and, for an operator in a
    cluster (where an absent Secret leaves them unset), which Secret and keys feed them."""
    clean_env.setenv("PHONEFLEET_GEELARK_CREDENTIALS_SECRET", "phonefleet-shop-b/geelark-keys")
    with pytest.raises(InvalidSettings) as refused:
        load_settings(GeelarkSettings)
    message = str(refused.value)
    assert "set PHONEFLEET_GEELARK_TOKEN, or both PHONEFLEET_GEELARK_APP_ID and" in message
    assert (
        "in a cluster they come from the Secret phonefleet-shop-b/geelark-keys "
        "(key token, or keys appId and apiKey)"
    ) in message
