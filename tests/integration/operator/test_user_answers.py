"""What a user is told, on a real control plane, when a binding cannot run: by `kubectl
describe` (status condition and Event) and by the operator's log, each saying what to do."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.scenarios import (
    Fleet,
    Operator,
    condition,
    make_binding,
    posted,
    wait_phase,
)
from phonefleet_testbed.waiting import wait_for

WRONG_TOKEN = "wrong-SECRET-7e57"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("phonefleet_operator")
    ]


def _logged(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The operator's WARNING lines containing ``text``, once there is one (the operator logs
    them on its own thread, after the status write the test may have seen first)."""
    found: list[str] = wait_for(
        lambda: [line for line in _warnings(caplog) if text in line],
        30,
        message=f"a WARNING line with {text!r}",
    )
    return found


def _warned(kubectl: Kubectl, namespace: str, name: str, reason: str) -> str:
    """`kubectl describe pb NAME`, once the Warning Event ``reason`` was posted."""
    posted(kubectl, namespace, f"involvedObject.name={name},type=Warning,reason={reason}")
    described: str = kubectl("describe", "pb", name, "-n", namespace).stdout
    return described


def test_an_unknown_phone_is_explained_by_describe_and_logged(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator: Operator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`kubectl describe` of a binding naming no phone shows PhoneNotFound with what to do, in
    its conditions and a Warning Event; the operator logs it as a warning naming the binding."""
    kubectl.apply(make_binding("nowhere", "no-such-phone", namespace))
    body = wait_phase(kubectl, namespace, "nowhere", "PhoneNotFound")

    ready = condition(body, "Ready")
    assert ready is not None
    assert ready["reason"] == "PhoneNotFound"
    assert "create it in Geelark or correct spec.phoneId" in ready["message"]
    described = _warned(kubectl, namespace, "nowhere", "PhoneNotFound")
    assert "create it in Geelark or correct spec.phoneId" in described
    assert any(
        line.split()[:2] == ["Warning", "PhoneNotFound"] for line in described.splitlines()
    ), described
    assert _logged(caplog, f"PhoneNotFound PhoneBinding {namespace}/nowhere: ")


def test_a_refused_geelark_token_is_told_naming_the_variable_never_its_value(
    kubectl: Kubectl,
    namespace: str,
    fleet: Fleet,
    operator_factory: Callable[..., Operator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a token Geelark refuses, the binding is Error/GeelarkAuthFailed (Stalled for
    kstatus), its message and Warning Event say to fix PHONEFLEET_GEELARK_TOKEN and which Secret
    holds it, the operator logs a warning saying the same, and the token appears nowhere."""
    operator_factory(PHONEFLEET_GEELARK_TOKEN=WRONG_TOKEN)
    phone_id = fleet.add_phone()
    kubectl.apply(make_binding("refused", phone_id, namespace))
    body = wait_phase(kubectl, namespace, "refused", "Error")

    ready = condition(body, "Ready")
    stalled = condition(body, "Stalled")
    assert ready is not None
    assert stalled is not None
    assert ready["reason"] == "GeelarkAuthFailed"
    assert stalled["status"] == "True"
    assert "fix PHONEFLEET_GEELARK_TOKEN (the Secret" in ready["message"]
    described = _warned(kubectl, namespace, "refused", "GeelarkAuthFailed")
    assert any(
        line.split()[:2] == ["Warning", "GeelarkAuthFailed"] for line in described.splitlines()
    ), described
    logged = _logged(caplog, f"GeelarkAuthFailed PhoneBinding {namespace}/refused: ")
    assert "fix PHONEFLEET_GEELARK_TOKEN" in logged[0]
    everything = described + caplog.text + str(body)
    assert WRONG_TOKEN not in everything
    assert fleet.running() == set()
