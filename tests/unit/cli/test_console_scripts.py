"""Specification of the console scripts: each works with its extra, or names the extra to install.

The scripts are run as installed (their entry points from the package metadata) in a fresh
interpreter. "Not installed" is made real for that interpreter alone: ``sys.modules[name] = None``
makes both ``import name`` and ``importlib.util.find_spec(name)`` fail as for a missing package.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

#: script -> (the extra it needs, a module of that extra, arguments that make it do something)
SCRIPTS = {
    "phonefleet": ("operator", "kopf", ["phones", "list"]),
    "phonefleet-operator": ("operator", "kopf", []),
    "phonefleet-worker": ("worker", "appium", ["--phone-id", "600000000000000001"]),
}


def run_script(
    name: str, args: list[str], *, without: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script ``name`` in a new interpreter, ``without`` a module."""
    (entry,) = [
        e
        for e in importlib.metadata.entry_points(group="console_scripts", name=name)
        if e.dist is not None and e.dist.name == "phonefleet"
    ]
    hide = f"sys.modules[{without!r}] = None; " if without else ""
    code = (
        f"import sys; {hide}sys.argv = [{name!r}, *{args!r}]; "
        f"from {entry.module} import {entry.attr} as run; sys.exit(run())"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(("name", "extra", "module", "args"), [(n, *v) for n, v in SCRIPTS.items()])
def test_a_script_without_its_extra_says_which_extra_to_install(
    name: str, extra: str, module: str, args: list[str]
) -> None:
    """No traceback: one line naming the missing module and ``pip install 'phonefleet[extra]'``."""
    done = run_script(name, args, without=module)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert module in done.stderr
    assert f"pip install 'phonefleet[{extra}]'" in done.stderr


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_a_script_with_its_extra_works(name: str) -> None:
    """With everything installed each script runs: ``--help`` exits 0 and shows its usage."""
    done = run_script(name, ["--help"])

    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


@pytest.mark.parametrize("command", [["dev", "up"], ["dev", "demo"]])
def test_dev_commands_outside_a_checkout_say_they_need_one(command: list[str]) -> None:
    """Installed from the wheel (no test bed): `phonefleet dev ...` explains, no traceback, and
    exits 2 (nothing could be done)."""
    done = run_script("phonefleet", command, without="phonefleet_testbed")

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "needs a phonefleet checkout" in done.stderr
    assert "make demo" in done.stderr
