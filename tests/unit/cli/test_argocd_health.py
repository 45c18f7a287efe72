"""The Argo CD health check of PhoneBinding, run in Lua 5.1 (Argo CD's level) on sample statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from phonefleet_testbed.binaries import repo_root

ARGOCD = repo_root() / "manifests" / "argocd"
SCRIPT = ARGOCD / "phonebinding-health.lua"
CONFIG_KEY = "resource.customizations.health.phonefleet.dev_PhoneBinding"


def run_health_check(obj: dict[str, Any], script: Path = SCRIPT) -> dict[str, str]:
    """Run the script as Argo CD does: the live object as the global `obj`, `hs` returned."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(script.read_text())
    return dict(hs.items())


def make_binding(phase: str | None = None, *, generation: int = 2, **status: Any) -> dict[str, Any]:
    """A PhoneBinding as Argo CD sees it live, with a status in ``phase`` for ``generation``."""
    body: dict[str, Any] = {
        "apiVersion": "phonefleet.dev/v1alpha1",
        "kind": "PhoneBinding",
        "metadata": {"name": "alpha", "namespace": "team-a", "generation": generation},
        "spec": {"phoneId": "phone-001"},
    }
    if phase is not None:
        body["status"] = {"phase": phase, "observedGeneration": generation, **status}
    return body


def ready(value: str, reason: str = "PodReady") -> list[dict[str, Any]]:
    """Conditions with a Ready condition of this status (after another condition)."""
    return [
        {"type": "Claimed", "status": "True", "reason": "Held", "message": ""},
        {"type": "Ready", "status": value, "reason": reason, "message": ""},
    ]


@pytest.mark.parametrize(
    ("phase", "status", "health"),
    [
        ("Running", {"conditions": ready("True")}, "Healthy"),
        ("Running", {"conditions": ready("False", "PodNotReady")}, "Progressing"),
        ("Running", {}, "Progressing"),
        ("Pending", {"conditions": ready("False", "Resolving")}, "Progressing"),
        ("Bound", {"conditions": ready("False", "PhoneStarting")}, "Progressing"),
        ("Conflict", {"conflictWith": "team-b/bravo"}, "Degraded"),
        ("PhoneNotFound", {}, "Degraded"),
        ("Error", {}, "Degraded"),
        ("Suspended", {"conditions": ready("False", "Suspended")}, "Suspended"),
        ("Sideways", {}, "Unknown"),
    ],
)
def test_each_phase_maps_to_an_argo_cd_health(
    phase: str, status: dict[str, Any], health: str
) -> None:
    """A current status maps its phase (and Ready, when Running) to Argo CD's health."""
    hs = run_health_check(make_binding(phase, message=f"The binding is {phase}.", **status))

    assert hs["status"] == health
    assert f"The binding is {phase}." in hs["message"]


def test_a_binding_without_status_is_progressing() -> None:
    """A binding the operator has not reported on yet is Progressing."""
    hs = run_health_check(make_binding())

    assert hs == {
        "status": "Progressing",
        "message": "Waiting for the phonefleet operator to report on this binding",
    }


def test_a_status_of_an_older_generation_is_progressing_even_when_running() -> None:
    """observedGeneration behind metadata.generation means Progressing, whatever the phase says."""
    body = make_binding("Running", conditions=ready("True"))
    body["metadata"]["generation"] = 3

    hs = run_health_check(body)

    assert hs["status"] == "Progressing"
    assert hs["message"] == (
        "Waiting for the operator to observe generation 3 (status is of generation 2)"
    )


def test_a_conflict_names_the_holder() -> None:
    """A Conflict's message names the holding binding when the operator's message does not."""
    hs = run_health_check(make_binding("Conflict", conflictWith="team-b/bravo", message="Taken."))

    assert hs["message"] == "Taken. (held by team-b/bravo)"


def test_a_conflict_message_naming_the_holder_is_kept_as_is() -> None:
    """The holder is not repeated when the message names it already."""
    message = "Phone 600000000000000001 is held by team-b/bravo."

    hs = run_health_check(make_binding("Conflict", conflictWith="team-b/bravo", message=message))

    assert hs["message"] == message


def test_a_missing_message_is_replaced_by_the_phase() -> None:
    """Without status.message the phase is the message."""
    assert run_health_check(make_binding("Error"))["message"] == "PhoneBinding is Error"


def test_the_argocd_cm_patch_carries_the_script_verbatim() -> None:
    """argocd-cm-patch.yaml holds the script under Argo CD's key, byte for byte."""
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())

    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    assert patch["data"] == {CONFIG_KEY: SCRIPT.read_text()}, (
        "copy manifests/argocd/phonebinding-health.lua into argocd-cm-patch.yaml"
    )
