"""Every ``phonefleet`` command's help says what its exit codes mean (cron, CI and scripts)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from phonefleet_operator.cli.main import cli
from phonefleet_operator.main import run


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _leaves(command, (*path, name))
        else:
            found.append((*path, name))
    return found


LEAVES = _leaves(cli)


def test_every_command_is_walked() -> None:
    """The walk finds the commands the README names (so the test below checks them all)."""
    assert {("bindings", "validate"), ("phones", "stop"), ("jobs", "import"), ("dev", "up")} <= set(
        LEAVES
    )


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_each_command_documents_its_exit_codes(path: tuple[str, ...]) -> None:
    """`phonefleet ... --help` has an "Exit codes:" section naming 0."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Exit codes: 0 " in " ".join(result.output.split()), result.output


def test_the_top_level_help_explains_the_exit_codes_of_every_command() -> None:
    """`phonefleet --help` gives the one convention: 0 done, 1 problems found, 2 usage."""
    result = CliRunner().invoke(cli, ["--help"])
    text = " ".join(result.output.split())
    assert "Exit codes: 0 done" in text
    assert "1 problems found" in text
    assert "2 usage" in text


def test_the_operator_command_documents_its_exit_codes() -> None:
    """`phonefleet-operator --help` says what 1, 2 and 3 mean (CrashLoopBackOff readers)."""
    result = CliRunner().invoke(run, ["--help"])
    text = " ".join(result.output.split())
    assert "Exit codes: 0 stopped" in text
    for code in ("1 ", "2 invalid settings", "3 "):
        assert code in text
