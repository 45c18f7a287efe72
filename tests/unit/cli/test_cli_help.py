"""Every ``phonefleet`` command's help says what its exit codes mean (cron, CI and scripts), in
the words of the one contract (``cli/exit_codes.py``)."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from phonefleet_operator.cli.exit_codes import LABELS
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


#: "<code> <word>:" where a code's meaning starts in an "Exit codes:" paragraph.
_CLAUSE = re.compile(r"(?<![\w.-])(\d+) (\w+):")


def documented_codes(help_text: str) -> list[tuple[int, str]]:
    """Each (code, word) of the "Exit codes:" paragraph of ``help_text``, in order."""
    text = " ".join(help_text.split())
    assert "Exit codes: " in text, help_text
    paragraph = text.split("Exit codes: ", 1)[1]
    return [(int(code), word) for code, word in _CLAUSE.findall(paragraph)]


def test_the_reader_of_the_help_finds_a_code_outside_the_contract() -> None:
    """The check below can fail: a code used for what the contract calls something else, or a
    code the contract does not have, is seen."""
    assert documented_codes("Exit codes: 0 done: x; 2 problems: y; 3 other: z") == [
        (0, "done"),
        (2, "problems"),
        (3, "other"),
    ]


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_each_command_documents_its_exit_codes_in_the_words_of_the_contract(
    path: tuple[str, ...],
) -> None:
    """`phonefleet ... --help` has an "Exit codes:" paragraph that starts with 0 done, and each
    code it names is one of the contract's, with the contract's word (1 problems, 2 error)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    codes = documented_codes(result.output)
    assert codes[:1] == [(0, "done")], result.output
    for code, word in codes:
        assert LABELS.get(code) == word, f"{code} {word}: {result.output}"


def test_the_top_level_help_gives_the_one_contract() -> None:
    """`phonefleet --help` gives the contract: 0 done, 1 problems (refusals included), 2 error
    (usage, or the cluster or Geelark could not be reached)."""
    result = CliRunner().invoke(cli, ["--help"])
    text = " ".join(result.output.split())
    assert documented_codes(result.output) == [(0, "done"), (1, "problems"), (2, "error")]
    assert "refused something on purpose" in text
    assert "usage or settings error, or the cluster, Geelark" in text


def test_the_operator_command_documents_its_exit_codes() -> None:
    """`phonefleet-operator --help` says what 1, 2 and 3 mean (CrashLoopBackOff readers)."""
    result = CliRunner().invoke(run, ["--help"])
    text = " ".join(result.output.split())
    assert "Exit codes: 0 stopped" in text
    for code in ("1 ", "2 invalid settings", "3 "):
        assert code in text
