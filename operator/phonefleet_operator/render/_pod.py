"""The worker pod of a binding: an Appium server as a native sidecar beside the worker container."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..constants import (
    ADB_MOUNT_PATH,
    ANNOTATION_SPEC_HASH,
    COMPONENT_WORKER,
    CONTAINER_APPIUM,
    CONTAINER_WORKER,
)
from ..models import ContainerOverrides, EnvVar, PhoneBinding, Resources
from ..settings import OperatorSettings
from ._hash import stable_hash
from ._labels import object_labels
from ._names import adb_secret_name, owner_reference, pod_name

__all__ = ["build_pod", "needs_update", "outdated", "pod_spec_hash"]

_ADB_VOLUME = "adb"
_WORKER_TMP_VOLUME = "worker-tmp"
_APPIUM_TMP_VOLUME = "appium-tmp"
_APPIUM_ANDROID_VOLUME = "appium-android"
_APPIUM_PORT_NAME = "appium"
_PROBE_PORT_NAME = "probe"
_JOB_PORT_NAME = "jobs"
# Owner and group may read the Secret's files (the pod's fsGroup is the worker's group), no other.
_SECRET_FILE_MODE = 0o440


def build_pod(binding: PhoneBinding, phone_id: str, settings: OperatorSettings) -> dict[str, Any]:
    """The one pod that serves ``binding`` with the phone ``phone_id`` (its canonical Geelark id).

    The Appium server runs as a native sidecar (an init container with ``restartPolicy: Always``),
    so Kubernetes starts it first, holds the worker back until Appium answers its startup probe,
    and stops it after the worker. The pod carries no secret: the ADB endpoint comes from the
    binding's Secret, mounted read-only. The ``phonefleet.dev/spec-hash`` annotation digests the
    pod's labels and spec; :func:`needs_update` compares it.
    """
    labels, spec = _labels_and_spec(binding, phone_id, settings)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(binding.name),
            "namespace": binding.namespace,
            "labels": labels,
            "annotations": {ANNOTATION_SPEC_HASH: stable_hash({"labels": labels, "spec": spec})},
            "ownerReferences": [owner_reference(binding)],
        },
        "spec": spec,
    }


def pod_spec_hash(binding: PhoneBinding, phone_id: str, settings: OperatorSettings) -> str:
    """The ``phonefleet.dev/spec-hash`` annotation :func:`build_pod` gives the pod, alone.

    Its inputs are the binding's name, ``spec.worker`` and ``spec.appium``, the phone id and the
    settings (see :func:`_labels_and_spec`): a caller that memoises it keys on those.
    """
    labels, spec = _labels_and_spec(binding, phone_id, settings)
    return stable_hash({"labels": labels, "spec": spec})


def _labels_and_spec(
    binding: PhoneBinding, phone_id: str, settings: OperatorSettings
) -> tuple[dict[str, str], dict[str, Any]]:
    """The pod's labels and spec: what its spec hash digests. They read the binding's name,
    ``spec.worker``, ``spec.appium``, ``phone_id`` and ``settings``; nothing else."""
    if not phone_id:
        raise ValueError("phone_id must be the canonical Geelark id of the bound phone")
    labels = object_labels(binding, component=COMPONENT_WORKER, phone_id=phone_id)
    spec = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_group,
            "fsGroup": settings.run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_appium_container(binding.spec.appium, settings)],
        "containers": [_worker_container(phone_id, binding.spec.worker, settings)],
        "volumes": [
            {
                "name": _ADB_VOLUME,
                "secret": {
                    "secretName": adb_secret_name(binding.name),
                    "defaultMode": _SECRET_FILE_MODE,
                },
            },
            {"name": _WORKER_TMP_VOLUME, "emptyDir": {}},
            {"name": _APPIUM_TMP_VOLUME, "emptyDir": {}},
            {"name": _APPIUM_ANDROID_VOLUME, "emptyDir": {}},
        ],
    }
    return labels, spec


def needs_update(live_pod: Mapping[str, Any], desired_pod: Mapping[str, Any]) -> bool:
    """Whether the live pod differs from the desired one, judged by their spec-hash annotations.

    Only the annotation counts: the API server adds defaults and status to a live pod, so comparing
    whole objects would always see a difference. A pod without the annotation is out of date.
    """
    desired = _spec_hash(desired_pod)
    return desired is None or outdated(live_pod, desired)


def outdated(live_pod: Mapping[str, Any], desired_hash: str) -> bool:
    """Whether the live pod's spec-hash annotation is missing or not ``desired_hash`` (as
    :func:`needs_update`, given the desired pod's hash from :func:`pod_spec_hash`)."""
    return _spec_hash(live_pod) != desired_hash


def _spec_hash(pod: Mapping[str, Any]) -> str | None:
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    value = annotations.get(ANNOTATION_SPEC_HASH)
    return value if isinstance(value, str) else None


def _appium_container(overrides: ContainerOverrides, settings: OperatorSettings) -> dict[str, Any]:
    return {
        "name": CONTAINER_APPIUM,
        "image": overrides.image or settings.appium_image,
        "imagePullPolicy": settings.appium_image_pull_policy,
        "restartPolicy": "Always",
        "command": list(settings.appium_command),
        "args": [
            # Every address, not 127.0.0.1: the kubelet probes the pod's IP.
            "--address",
            "0.0.0.0",  # noqa: S104 - see the comment above
            "--port",
            str(settings.appium_port),
            "--log-no-colors",
            "--log-timestamp",
            # Appium refuses to start unless APPIUM_HOME is writable, which a read-only root
            # filesystem never is (found by the test bed's real node); it only reads it here.
            "--no-perms-check",
            *overrides.args,
        ],
        "env": _merge_env([{"name": "HOME", "value": settings.appium_home}], overrides.env),
        "ports": [
            {"name": _APPIUM_PORT_NAME, "containerPort": settings.appium_port, "protocol": "TCP"}
        ],
        # The worker starts only once this probe passes, so it never races Appium's start.
        "startupProbe": _http_probe("/status", _APPIUM_PORT_NAME, period=2, timeout=2, failures=60),
        "readinessProbe": _http_probe(
            "/status", _APPIUM_PORT_NAME, period=10, timeout=5, failures=3
        ),
        "resources": _resources(overrides.resources or settings.appium_resources),
        "securityContext": _container_security(
            settings.appium_run_as_user, settings.appium_run_as_group
        ),
        "volumeMounts": [
            {"name": _APPIUM_TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
            {
                "name": _APPIUM_ANDROID_VOLUME,
                "mountPath": f"{settings.appium_home.rstrip('/')}/.android",
            },
        ],
    }


def _worker_container(
    phone_id: str, overrides: ContainerOverrides, settings: OperatorSettings
) -> dict[str, Any]:
    return {
        "name": CONTAINER_WORKER,
        "image": overrides.image or settings.worker_image,
        "imagePullPolicy": settings.worker_image_pull_policy,
        "args": [
            "--phone-id",
            phone_id,
            "--adb-secret-dir",
            ADB_MOUNT_PATH,
            "--appium-url",
            f"http://127.0.0.1:{settings.appium_port}",
            "--probe-port",
            str(settings.worker_probe_port),
            "--system-port",
            str(settings.appium_system_port),
            "--job-port",
            str(settings.worker_job_port),
            *overrides.args,
        ],
        # The root filesystem is read-only; adb keeps its key under $HOME/.android.
        "env": _merge_env([{"name": "HOME", "value": "/tmp"}], overrides.env),  # noqa: S108
        "ports": [
            {
                "name": _PROBE_PORT_NAME,
                "containerPort": settings.worker_probe_port,
                "protocol": "TCP",
            },
            # The operator delivers PhoneJobs here; the job token in the mounted Secret guards it.
            {"name": _JOB_PORT_NAME, "containerPort": settings.worker_job_port, "protocol": "TCP"},
        ],
        # Liveness counts only after startup, so a slow start is not mistaken for a hang.
        "startupProbe": _http_probe("/livez", _PROBE_PORT_NAME, period=2, timeout=2, failures=30),
        "readinessProbe": _http_probe(
            "/readyz", _PROBE_PORT_NAME, period=10, timeout=3, failures=3
        ),
        "livenessProbe": _http_probe("/livez", _PROBE_PORT_NAME, period=20, timeout=5, failures=3),
        "resources": _resources(overrides.resources or settings.worker_resources),
        "securityContext": _container_security(settings.run_as_user, settings.run_as_group),
        "volumeMounts": [
            {"name": _ADB_VOLUME, "mountPath": ADB_MOUNT_PATH, "readOnly": True},
            {"name": _WORKER_TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
        ],
    }


def _http_probe(
    path: str, port: str, *, period: int, timeout: int, failures: int
) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _container_security(user: int, group: int) -> dict[str, Any]:
    # What Pod Security "restricted" asks of every container, plus a read-only root filesystem.
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": group,
    }


def _resources(resources: Resources) -> dict[str, dict[str, str]]:
    rendered: dict[str, dict[str, str]] = {}
    if resources.requests:
        rendered["requests"] = dict(resources.requests)
    if resources.limits:
        rendered["limits"] = dict(resources.limits)
    return rendered


def _merge_env(
    defaults: Sequence[Mapping[str, str]], extra: Sequence[EnvVar]
) -> list[dict[str, str]]:
    # A binding's variable replaces the operator's of the same name in place: no duplicate names.
    merged = {item["name"]: dict(item) for item in defaults}
    for variable in extra:
        merged[variable.name] = {"name": variable.name, "value": variable.value}
    return list(merged.values())
