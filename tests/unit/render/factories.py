"""Factories and golden-file helpers for the render tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from phonefleet_operator.models import AdbConnection, PhoneBinding, PhoneBindingSpec
from phonefleet_operator.settings import OperatorSettings

__all__ = [
    "PASSWORD",
    "PHONE_ID",
    "assert_matches_golden",
    "make_binding",
    "make_connection",
    "make_settings",
]

PHONE_ID = "526209711930868736"
PASSWORD = "s3cr3t-Pw-9f2c"  # distinctive, so a leak is easy to grep for
GOLDEN = Path(__file__).parent / "golden"


def make_binding(
    *,
    name: str = "checkout-phone",
    namespace: str = "team-a",
    uid: str = "7f9c6a8e-0d2b-4a51-9d8e-3c1f2b4a5d6e",
    generation: int = 1,
    **spec: Any,
) -> PhoneBinding:
    """A PhoneBinding for phone "checkout-01"; ``spec`` sets spec fields by their Python names."""
    return PhoneBinding(
        metadata={
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": generation,
            "creation_timestamp": "2024-05-01T10:00:00Z",
        },
        spec=PhoneBindingSpec(**{"phone_id": "checkout-01", **spec}),
    )


def make_settings(**overrides: Any) -> OperatorSettings:
    """Operator settings at their defaults, with ``overrides`` applied."""
    return OperatorSettings(**overrides)


def make_connection(**overrides: Any) -> AdbConnection:
    """The ADB endpoint of PHONE_ID, with ``overrides`` applied."""
    fields: dict[str, Any] = {
        "ip": "10.20.30.40",
        "port": "31001",
        "password": PASSWORD,
        "phone_id": PHONE_ID,
        **overrides,
    }
    return AdbConnection(**fields)


def assert_matches_golden(name: str, rendered: dict[str, Any]) -> None:
    """``rendered`` equals golden/<name>.yaml; PHONEFLEET_UPDATE_GOLDEN=1 rewrites the file."""
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("PHONEFLEET_UPDATE_GOLDEN") == "1":
        text = yaml.safe_dump(rendered, sort_keys=False, width=100, allow_unicode=True)
        path.write_text(
            f"# Rendered by tests/unit/render; regenerate: PHONEFLEET_UPDATE_GOLDEN=1\n{text}"
        )
    assert path.exists(), f"{path} is missing: run the test with PHONEFLEET_UPDATE_GOLDEN=1"
    assert yaml.safe_load(path.read_text()) == rendered
