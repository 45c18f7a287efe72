"""Specifications of the worker pod: its shape, its hash, its purity, its security."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest

from phonefleet_operator.constants import ADB_MOUNT_PATH, ANNOTATION_SPEC_HASH
from phonefleet_operator.render import build_pod, needs_update

from .factories import PASSWORD, PHONE_ID, assert_matches_golden, make_binding, make_settings
from .pod_security import all_containers, restricted_violations

OVERRIDES: dict[str, Any] = {
    "worker": {
        "image": "registry.example/worker:1.2",
        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}},
        "args": ["--verbose"],
        "env": [
            {"name": "TZ", "value": "Europe/Berlin"},
            {"name": "HOME", "value": "/home/worker"},
        ],
    },
    "appium": {
        "image": "registry.example/appium:3",
        "args": ["--log-level", "debug"],
        "env": [{"name": "NODE_OPTIONS", "value": "--max-old-space-size=512"}],
    },
}


def containers(pod: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container of the pod, init containers included, by name."""
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def test_default_pod_matches_its_golden_file() -> None:
    """A plain binding renders the pod in golden/pod.yaml."""
    assert_matches_golden("pod", build_pod(make_binding(), PHONE_ID, make_settings()))


def test_pod_with_overrides_matches_its_golden_file() -> None:
    """A binding with image, resources, args and env overrides renders golden/pod-overrides.yaml."""
    pod = build_pod(make_binding(**OVERRIDES), PHONE_ID, make_settings())

    assert_matches_golden("pod-overrides", pod)


def test_pod_is_owned_by_its_binding_and_named_after_it() -> None:
    """The pod is <binding>-worker in the binding's namespace, controlled by the binding."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())

    assert pod["metadata"]["name"] == "checkout-phone-worker"
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "phonefleet.dev/v1alpha1",
            "kind": "PhoneBinding",
            "name": "checkout-phone",
            "uid": "7f9c6a8e-0d2b-4a51-9d8e-3c1f2b4a5d6e",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_pod_labels_name_the_app_the_binding_and_the_phone() -> None:
    """The pod carries the app.kubernetes.io set plus the canonical phone id and binding name."""
    labels = build_pod(make_binding(), PHONE_ID, make_settings())["metadata"]["labels"]

    assert labels == {
        "app.kubernetes.io/name": "phonefleet",
        "app.kubernetes.io/instance": "checkout-phone",
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/part-of": "phonefleet",
        "app.kubernetes.io/managed-by": "phonefleet",
        "phonefleet.dev/phone-id": PHONE_ID,
        "phonefleet.dev/binding": "checkout-phone",
    }


def test_appium_runs_as_a_native_sidecar_with_a_status_probe() -> None:
    """Appium is the first init container, restartPolicy Always, probed on /status at 4723."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())
    (appium,) = pod["spec"]["initContainers"]

    assert appium["name"] == "appium"
    assert appium["restartPolicy"] == "Always"
    assert appium["ports"][0]["containerPort"] == 4723
    for probe in ("startupProbe", "readinessProbe"):
        assert appium[probe]["httpGet"] == {"path": "/status", "port": "appium"}
    assert appium["args"][:4] == ["--address", "0.0.0.0", "--port", "4723"]  # noqa: S104


def test_worker_is_told_its_phone_its_secret_and_its_appium() -> None:
    """The worker gets --phone-id (the canonical id), the Secret dir, Appium's URL, its ports."""
    pod = build_pod(make_binding(phone_id="checkout-01"), PHONE_ID, make_settings())
    worker = containers(pod)["worker"]

    assert worker["args"] == [
        "--phone-id",
        PHONE_ID,
        "--adb-secret-dir",
        "/var/run/phonefleet/adb",
        "--appium-url",
        "http://127.0.0.1:4723",
        "--probe-port",
        "8080",
        "--system-port",
        "8200",
        "--job-port",
        "8090",
    ]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probe"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "probe"}
    assert worker["ports"] == [
        {"name": "probe", "containerPort": 8080, "protocol": "TCP"},
        {"name": "jobs", "containerPort": 8090, "protocol": "TCP"},
    ]


def test_the_pod_spec_never_carries_the_job_token() -> None:
    """The job token reaches the worker only through the mounted Secret, never the pod spec."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())

    assert "jobToken" not in str(pod)
    assert all(not e["name"].upper().endswith("TOKEN") for e in containers(pod)["worker"]["env"])


def test_worker_mounts_the_adb_secret_read_only() -> None:
    """The binding's <name>-adb Secret is mounted read-only at the documented path, mode 0440."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())
    (mount,) = [m for m in containers(pod)["worker"]["volumeMounts"] if m["name"] == "adb"]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "adb"]

    assert mount == {"name": "adb", "mountPath": ADB_MOUNT_PATH, "readOnly": True}
    assert volume["secret"] == {"secretName": "checkout-phone-adb", "defaultMode": 0o440}


def test_settings_choose_images_ports_and_resources() -> None:
    """Images, pull policies, ports, uids and default resources come from the settings."""
    settings = make_settings(
        worker_image="w:1",
        appium_image="a:1",
        worker_image_pull_policy="Always",
        appium_port=4999,
        worker_probe_port=9000,
        appium_system_port=8300,
        run_as_user=2000,
        termination_grace_seconds=5,
        worker_resources={"requests": {"cpu": "1"}},
    )
    pod = build_pod(make_binding(), PHONE_ID, settings)
    appium, worker = containers(pod)["appium"], containers(pod)["worker"]

    assert (worker["image"], worker["imagePullPolicy"], appium["image"]) == ("w:1", "Always", "a:1")
    assert "http://127.0.0.1:4999" in worker["args"]
    assert worker["args"][worker["args"].index("--probe-port") + 1] == "9000"
    assert worker["args"][worker["args"].index("--system-port") + 1] == "8300"
    assert appium["ports"][0]["containerPort"] == 4999
    assert worker["resources"] == {"requests": {"cpu": "1"}}
    assert pod["spec"]["securityContext"]["runAsUser"] == 2000
    assert pod["spec"]["terminationGracePeriodSeconds"] == 5


def test_overrides_replace_image_and_resources_and_extend_args_and_env() -> None:
    """Per-binding image and resources replace defaults; args are appended; env merges by name."""
    pod = build_pod(make_binding(**OVERRIDES), PHONE_ID, make_settings())
    appium, worker = containers(pod)["appium"], containers(pod)["worker"]

    assert worker["image"] == "registry.example/worker:1.2"
    assert worker["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "512Mi"}}
    assert worker["args"][-1] == "--verbose"
    assert worker["env"] == [
        {"name": "HOME", "value": "/home/worker"},
        {"name": "TZ", "value": "Europe/Berlin"},
    ]
    assert appium["image"] == "registry.example/appium:3"
    assert appium["resources"] == {
        "requests": {"cpu": "200m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert appium["args"][-2:] == ["--log-level", "debug"]


def test_rendering_is_pure() -> None:
    """Equal inputs give equal pods, and rendering does not change its inputs."""
    binding, settings = make_binding(**OVERRIDES), make_settings()
    before = (binding.model_copy(deep=True), settings.model_copy(deep=True))

    first = build_pod(binding, PHONE_ID, settings)
    second = build_pod(make_binding(**OVERRIDES), PHONE_ID, make_settings())

    assert first == second
    assert (binding, settings) == before


def test_rendered_pods_share_no_mutable_parts() -> None:
    """Changing one rendered pod never changes another (no shared dicts or lists)."""
    first = build_pod(make_binding(), PHONE_ID, make_settings())
    pristine = copy.deepcopy(first)
    second = build_pod(make_binding(), PHONE_ID, make_settings())

    def scribble(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                scribble(value)
            node["scribbled"] = True
        elif isinstance(node, list):
            for value in node:
                scribble(value)
            node.append("scribbled")

    scribble(second)

    assert first == pristine


def test_pod_contains_no_secret_value() -> None:
    """No password or ADB endpoint value appears anywhere in the pod: only the Secret's name."""
    rendered = json.dumps(build_pod(make_binding(**OVERRIDES), PHONE_ID, make_settings()))

    assert PASSWORD not in rendered
    assert "10.20.30.40" not in rendered
    assert "password" not in rendered.lower()


def test_spec_hash_is_a_short_stable_digest() -> None:
    """The annotation is 16 hex digits and the same for the same input."""
    digest = build_pod(make_binding(), PHONE_ID, make_settings())["metadata"]["annotations"][
        ANNOTATION_SPEC_HASH
    ]

    assert len(digest) == 16
    assert int(digest, 16) >= 0


@pytest.mark.parametrize(
    ("binding_overrides", "phone_id", "settings_overrides"),
    [
        pytest.param({"worker": {"image": "w:2"}}, PHONE_ID, {}, id="worker-image"),
        pytest.param({"appium": {"args": ["--x"]}}, PHONE_ID, {}, id="appium-args"),
        pytest.param({}, "111111111111111111", {}, id="phone-id"),
        pytest.param({}, PHONE_ID, {"worker_image": "w:3"}, id="settings-image"),
        pytest.param({}, PHONE_ID, {"termination_grace_seconds": 60}, id="grace-period"),
    ],
)
def test_needs_update_when_the_desired_pod_changes(
    binding_overrides: dict[str, Any], phone_id: str, settings_overrides: dict[str, Any]
) -> None:
    """A changed spec, phone or setting gives another hash, so the live pod must be replaced."""
    live = build_pod(make_binding(), PHONE_ID, make_settings())
    desired = build_pod(
        make_binding(**binding_overrides), phone_id, make_settings(**settings_overrides)
    )

    assert needs_update(live, desired)


def test_no_update_when_only_server_side_fields_differ() -> None:
    """A live pod with status, defaults and other annotations but the same hash is left alone."""
    desired = build_pod(make_binding(), PHONE_ID, make_settings())
    live = copy.deepcopy(desired)
    live["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "now"
    live["metadata"]["resourceVersion"] = "42"
    live["spec"]["nodeName"] = "node-1"
    live["spec"]["dnsPolicy"] = "ClusterFirst"
    live["status"] = {"phase": "Running"}

    assert not needs_update(live, desired)


def test_no_update_for_metadata_only_changes_of_the_binding() -> None:
    """A new generation or uid of the binding alone does not change the pod's hash."""
    live = build_pod(make_binding(generation=1), PHONE_ID, make_settings())
    desired = build_pod(make_binding(generation=7), PHONE_ID, make_settings())

    assert not needs_update(live, desired)


@pytest.mark.parametrize(
    "metadata",
    [{}, {"annotations": None}, {"annotations": {}}],
    ids=["no-metadata", "null-annotations", "no-hash"],
)
def test_needs_update_when_the_live_pod_has_no_hash(metadata: dict[str, Any]) -> None:
    """A pod without the annotation (made by hand or by an old operator) is replaced."""
    desired = build_pod(make_binding(), PHONE_ID, make_settings())

    assert needs_update({"metadata": metadata}, desired)


def test_long_binding_names_still_give_valid_object_names() -> None:
    """A 253-character binding name gives a pod name of at most 253 characters and valid labels."""
    pod = build_pod(make_binding(name="b" * 253), PHONE_ID, make_settings())

    assert len(pod["metadata"]["name"]) <= 253
    assert pod["metadata"]["name"].endswith("-worker")
    assert all(len(value) <= 63 for value in pod["metadata"]["labels"].values())


def test_pod_needs_a_phone_id() -> None:
    """Rendering without the canonical phone id is a programming error."""
    with pytest.raises(ValueError, match="phone_id"):
        build_pod(make_binding(), "", make_settings())


@pytest.mark.parametrize("overrides", [{}, OVERRIDES], ids=["defaults", "overrides"])
def test_pod_passes_pod_security_restricted(overrides: dict[str, Any]) -> None:
    """The pod breaks none of the Pod Security "restricted" rules, with or without overrides."""
    pod = build_pod(make_binding(**overrides), PHONE_ID, make_settings())

    assert restricted_violations(pod) == []


def test_the_restricted_checklist_catches_violations() -> None:
    """The checklist itself notices a privileged, root, escalating container on the host network."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())
    worker = pod["spec"]["containers"][0]
    worker["securityContext"].update(
        privileged=True, allowPrivilegeEscalation=True, runAsNonRoot=False
    )
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})

    assert len(restricted_violations(pod)) == 5


def test_pod_hardening_beyond_restricted() -> None:
    """Read-only root filesystems with private /tmp, no service account token, no service links."""
    pod = build_pod(make_binding(), PHONE_ID, make_settings())

    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["enableServiceLinks"] is False
    assert pod["spec"]["restartPolicy"] == "Always"
    for container in all_containers(pod["spec"]):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # noqa: S108
