"""Fixtures of the render tests: settings come from defaults only, never from the environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Golden files hold the defaults: PHONEFLEET_* variables of a developer must not leak in.
    for name in list(os.environ):
        if name.startswith("PHONEFLEET_") and name != "PHONEFLEET_UPDATE_GOLDEN":
            monkeypatch.delenv(name)
