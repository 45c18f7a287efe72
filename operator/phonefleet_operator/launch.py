"""The console scripts: each checks that its extra is installed, then imports and runs its command.

``pip install phonefleet`` installs the worker's small base only; the operator and the CLI need
``phonefleet[operator]`` and the worker ``phonefleet[worker]``. Without them a command would die
in a traceback about some module; instead it says which extra to install. Nothing heavy is
imported here, so the check itself cannot fail the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from typing import Final

__all__ = ["cli", "missing_modules", "operator", "worker"]

#: The top-level modules each extra brings, as imported (PyYAML is ``yaml``).
EXTRA_MODULES: Final[dict[str, tuple[str, ...]]] = {
    "operator": ("kopf", "kubernetes", "aiohttp", "tenacity", "yaml", "cryptography"),
    "worker": ("appium", "selenium"),
}


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported (found without importing them)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _launch(command: str, extra: str, target: str) -> None:
    missing = missing_modules(EXTRA_MODULES[extra])
    if missing:
        sys.stderr.write(
            f"{command}: missing {', '.join(missing)}: this command needs the {extra!r} extra: "
            f"pip install 'phonefleet[{extra}]'\n"
        )
        raise SystemExit(1)
    module, _, attribute = target.partition(":")
    run: Callable[[], object] = getattr(importlib.import_module(module), attribute)
    run()


def cli() -> None:
    """``phonefleet``: the GitOps helpers and the local test bed."""
    _launch("phonefleet", "operator", "phonefleet_operator.cli.main:cli")


def operator() -> None:
    """``phonefleet-operator``: the kopf operator."""
    _launch("phonefleet-operator", "operator", "phonefleet_operator.main:run")


def worker() -> None:
    """``phonefleet-worker``: drives one phone through Appium."""
    _launch("phonefleet-worker", "worker", "phonefleet_worker.cli:main")
