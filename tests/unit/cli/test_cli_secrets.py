"""Specification that the ``phonefleet`` CLI names a bad variable and never prints a credential."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from phonefleet_operator.cli.main import cli

TOKEN = "tok-SECRET-0d15ea5e"
API_KEY = "sk-SECRET-5ca1ab1e"
APP_ID = "app-SECRET-c0ffee"
SECRETS = (TOKEN, API_KEY, APP_ID)

BROKEN = {
    "api key without app id": (
        {"PHONEFLEET_GEELARK_API_KEY": API_KEY},
        "PHONEFLEET_GEELARK_APP_ID",
    ),
    "token and a bad number": (
        {"PHONEFLEET_GEELARK_TOKEN": TOKEN, "PHONEFLEET_GEELARK_MAX_ATTEMPTS": "many"},
        "PHONEFLEET_GEELARK_MAX_ATTEMPTS",
    ),
    "key mode and a bad number": (
        {
            "PHONEFLEET_GEELARK_APP_ID": APP_ID,
            "PHONEFLEET_GEELARK_API_KEY": API_KEY,
            "PHONEFLEET_GEELARK_TIMEOUT_SECONDS": "-1",
        },
        "PHONEFLEET_GEELARK_TIMEOUT_SECONDS",
    ),
}


@pytest.mark.parametrize(("env", "variable"), BROKEN.values(), ids=list(BROKEN))
@pytest.mark.parametrize(
    "command",
    [["phones", "list"], ["bindings", "validate", "-"]],
    ids=["phones list", "bindings validate"],
)
def test_cli_errors_name_the_variable_and_print_no_credential(
    env: dict[str, str], variable: str, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command that needs Geelark refuses broken settings by name, never by value."""
    for name in ("TOKEN", "APP_ID", "API_KEY", "URL"):
        monkeypatch.delenv(f"PHONEFLEET_GEELARK_{name}", raising=False)
    result = CliRunner().invoke(cli, command, env=env, input="")
    assert result.exit_code == 2
    assert [s for s in SECRETS if s in result.output] == []
    assert variable in result.output
