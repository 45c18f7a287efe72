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
    """The path given, the client's reason and ``--kubeconfig FILE``, in one line; no traceback;
    exit 2 (could not decide) from every command."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("job_id,account,video_path,caption,status\n1,acc,/v.mp4,hi,pending\n")
    missing = tmp_path / "no-such-kubeconfig"
    argv = [{"LEDGER": str(ledger), "STATE": str(tmp_path / "seen.json")}.get(a, a) for a in args]
    result = CliRunner().invoke(cli, [*argv, "--kubeconfig", str(missing)], env=GEELARK)

    assert isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2
    assert f"no usable kubeconfig ({missing}: " in result.output
    assert "name one with --kubeconfig FILE" in result.output


@pytest.mark.parametrize("args", COMMANDS.values(), ids=list(COMMANDS))
def test_an_unreachable_api_server_is_named_with_what_to_check(
    args: list[str], kubeconfig: Path, tmp_path: Path
) -> None:
    """The kubeconfig names a server nobody serves (port 9): each command says, in one line, that
    the API server at that address could not be reached and to check the kubeconfig; no
    urllib3 internals, no traceback; exit 2 (could not decide)."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("job_id,account,video_path,caption,status\n1,acc,/v.mp4,hi,pending\n")
    argv = [{"LEDGER": str(ledger), "STATE": str(tmp_path / "seen.json")}.get(a, a) for a in args]
    result = CliRunner().invoke(cli, [*argv, "--kubeconfig", str(kubeconfig)], env=GEELARK)

    assert isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Kubernetes API server at https://127.0.0.1:9 could not be reached to " in lines[0]
    assert "(connection refused): check the server and user of the kubeconfig" in lines[0]
    for internal in ("HTTPSConnectionPool", "Max retries", "object at 0x", "_custom_object"):
        assert internal not in lines[0]
