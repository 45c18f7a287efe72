"""`phonefleet jobs import` when the cluster cannot be used: one line that says so, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from phonefleet_operator.cli.main import cli

LEDGER = "job_id,account,video_path,caption,status\n1,acc,/v.mp4,hi,pending\n"


def test_an_unreachable_cluster_is_one_line_and_exit_2(kubeconfig: Path, tmp_path: Path) -> None:
    """The kubeconfig names an API server nobody serves (port 9): connection refused, told with
    the server's address, and exit 2 as every command that could not reach the cluster."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(LEDGER)
    result = CliRunner().invoke(
        cli, ["jobs", "import", str(ledger), "--kubeconfig", str(kubeconfig)]
    )
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("ledger.csv: nothing imported: ")
    assert (
        "API server at https://127.0.0.1:9 could not be reached to list phonebindings" in lines[0]
    )


def test_an_unusable_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(LEDGER)
    missing = tmp_path / "no-such-kubeconfig"
    result = CliRunner().invoke(cli, ["jobs", "import", str(ledger), "--kubeconfig", str(missing)])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.output.strip().startswith("ledger.csv: nothing imported: no usable kubeconfig")
