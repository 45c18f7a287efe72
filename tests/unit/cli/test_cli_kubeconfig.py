"""Every command that reads the cluster says which kubeconfig it could not use, and how to name
another: the kubernetes client's own words do not say which file it read."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phonefleet_operator.cli.main import cli

GEELARK = {"PHONEFLEET_GEELARK_TOKEN": "t", "PHONEFLEET_GEELARK_URL": "http://127.0.0.1:9"}

COMMANDS = {
    "jobs import": ["jobs", "import", "LEDGER"],
    "phones stop": ["phones", "stop", "600000000000000001"],
    "phones list --billing": ["phones", "list", "--billing", "--state-file", "STATE"],
    "pools set-account": ["pools", "set-account", "client-acme", "--account", "shop-b"],
}


@pytest.mark.parametrize("args", COMMANDS.values(), ids=list(COMMANDS))
def test_a_missing_kubeconfig_is_named_with_the_option_to_fix_it(
    args: list[str], tmp_path: Path
) -> None:
    """The path given, the client's reason and ``--kubeconfig FILE``, in one line; no traceback."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("job_id,account,video_path,caption,status\n1,acc,/v.mp4,hi,pending\n")
    missing = tmp_path / "no-such-kubeconfig"
    argv = [{"LEDGER": str(ledger), "STATE": str(tmp_path / "seen.json")}.get(a, a) for a in args]
    result = CliRunner().invoke(cli, [*argv, "--kubeconfig", str(missing)], env=GEELARK)

    assert isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (1, 2)
    assert f"no usable kubeconfig ({missing}: " in result.output
    assert "name one with --kubeconfig FILE" in result.output
