"""The worker pod step memoises its pod's spec hash: never a stale one when an input changes."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeKube, FakePhones

from conftest import bring_up, make_binding, ready, step
from phonefleet_operator.constants import ANNOTATION_SPEC_HASH
from phonefleet_operator.models import PhoneBinding
from phonefleet_operator.render import build_pod
from phonefleet_operator.services.adb import AdbStep
from phonefleet_operator.services.observed import ObservedPods
from phonefleet_operator.services.reconcile import BindingReconciler
from phonefleet_operator.services.worker_pod import WorkerPodStep
from phonefleet_operator.settings import OperatorSettings


def pod_step(settings: OperatorSettings) -> WorkerPodStep:
    kube, phones = FakeKube(), FakePhones()
    return WorkerPodStep(kube, ObservedPods(), AdbStep(phones, kube, settings, None), settings)


def with_spec(binding: PhoneBinding, **spec: Any) -> PhoneBinding:
    """The same binding (same uid) with its spec changed as a person would change it."""
    body = binding.to_dict()
    body["spec"].update(spec)
    return PhoneBinding.from_body(body)


def rendered_hash(binding: PhoneBinding, phone_id: str, settings: OperatorSettings) -> str:
    return str(
        build_pod(binding, phone_id, settings)["metadata"]["annotations"][ANNOTATION_SPEC_HASH]
    )


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("worker image", {"worker": {"image": "registry.example/worker:2"}}),
    ("worker args", {"worker": {"args": ["--verbose"]}}),
    ("worker env", {"worker": {"env": [{"name": "TZ", "value": "UTC"}]}}),
    ("worker resources", {"worker": {"resources": {"limits": {"memory": "1Gi"}}}}),
    ("appium image", {"appium": {"image": "registry.example/appium:3"}}),
    ("appium args", {"appium": {"args": ["--log-level", "debug"]}}),
    ("appium env", {"appium": {"env": [{"name": "NODE_OPTIONS", "value": "--x"}]}}),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[what for what, _ in CHANGES])
def test_a_spec_change_gives_the_hash_build_pod_renders_for_the_new_spec(
    what: str, change: dict[str, Any]
) -> None:
    """After a warm memo, a changed override of the same binding (same uid, same generation)
    gives the hash of the newly rendered pod, not the memoised one; changing it back gives the
    first hash again."""
    settings = OperatorSettings()
    worker_pods = pod_step(settings)
    before = make_binding()
    first = worker_pods._desired_hash(before, "100")
    assert first == rendered_hash(before, "100", settings)
    after = with_spec(before, **change)
    assert after.uid == before.uid
    assert worker_pods._desired_hash(after, "100") == rendered_hash(after, "100", settings)
    assert worker_pods._desired_hash(after, "100") != first, what
    assert worker_pods._desired_hash(before, "100") == first


def test_another_phone_id_gives_another_hash() -> None:
    """The phone id is in the worker's args and the labels: a rebound binding's hash follows."""
    settings = OperatorSettings()
    worker_pods = pod_step(settings)
    binding = make_binding()
    first = worker_pods._desired_hash(binding, "100")
    second = worker_pods._desired_hash(binding, "200")
    assert second == rendered_hash(binding, "200", settings)
    assert second != first


def test_another_binding_name_under_the_same_uid_gives_its_own_hash() -> None:
    """The name is in the labels and the ADB Secret's name: it is part of the memo's key."""
    settings = OperatorSettings()
    worker_pods = pod_step(settings)
    alpha = make_binding("alpha")
    first = worker_pods._desired_hash(alpha, "100")
    body = alpha.to_dict()
    body["metadata"]["name"] = "beta"
    beta = PhoneBinding.from_body(body)
    assert worker_pods._desired_hash(beta, "100") == rendered_hash(beta, "100", settings)
    assert worker_pods._desired_hash(beta, "100") != first


def test_each_step_hashes_with_its_own_settings() -> None:
    """Settings are fixed for a step's life; another step with other images hashes with them."""
    binding = make_binding()
    plain, other = OperatorSettings(), OperatorSettings(worker_image="registry.example/w:9")
    assert pod_step(plain)._desired_hash(binding, "100") == rendered_hash(binding, "100", plain)
    assert pod_step(other)._desired_hash(binding, "100") == rendered_hash(binding, "100", other)
    assert rendered_hash(binding, "100", plain) != rendered_hash(binding, "100", other)


async def test_a_spec_change_on_a_running_binding_replaces_its_pod(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """Passes at rest memoise the hash; a new worker image still replaces the pod, and the new
    pod carries the hash of the new spec."""
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    binding, _, _ = await step(reconciler, binding)
    binding, _, _ = await step(reconciler, binding)
    assert binding.status.phase == "Running"
    assert reconciler.tracked()["podSpecHashes"] == 1
    changed = with_spec(binding, worker={"image": "registry.example/worker:2"})
    _, report, _ = await step(reconciler, changed)
    assert "DeletedPod" in [e.reason for e in report.events]
    assert ("ns", "alpha-worker") not in kube.pods
    await step(reconciler, changed)
    pod = kube.pods[("ns", "alpha-worker")]
    assert pod["spec"]["containers"][0]["image"] == "registry.example/worker:2"
    assert pod["metadata"]["annotations"][ANNOTATION_SPEC_HASH] == rendered_hash(
        changed, "100", reconciler._settings
    )


async def test_forgetting_a_binding_drops_its_memoised_hash(
    reconciler: BindingReconciler, kube: FakeKube, phones: FakePhones
) -> None:
    """A gone binding keeps no hash in memory."""
    binding = await bring_up(reconciler, phones)
    ready(kube.pods[("ns", "alpha-worker")])
    await step(reconciler, binding)
    assert reconciler.tracked()["podSpecHashes"] == 1
    reconciler.forget(binding.uid, "100")
    assert reconciler.tracked()["podSpecHashes"] == 0
