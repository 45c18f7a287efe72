"""A checklist of the Pod Security Standards "restricted" profile (which includes "baseline").

Source: https://kubernetes.io/docs/concepts/security/pod-security-standards/ . The integration tests
also create the pod in a namespace that enforces the profile; this checklist gives fast, precise
messages in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["all_containers", "restricted_violations"]

_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def all_containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Init, regular and ephemeral containers of a pod spec."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key, [])


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Every rule of Pod Security "restricted" that ``pod`` breaks; empty when it is admitted."""
    spec = pod["spec"]
    found = _pod_violations(spec)
    for container in all_containers(spec):
        found += [
            f"{container['name']}: {rule}"
            for rule in _container_violations(container, spec.get("securityContext", {}))
        ]
    return found


def _pod_violations(spec: Mapping[str, Any]) -> list[str]:
    security = spec.get("securityContext", {})
    found = [f"spec.{key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    found += [
        f"unsafe sysctl {sysctl['name']}"
        for sysctl in security.get("sysctls", [])
        if sysctl["name"] not in _SAFE_SYSCTLS
    ]
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _VOLUME_TYPES:
            found.append(f"volume {volume['name']} of type {sorted(kinds - _VOLUME_TYPES)}")
    if security.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    for profile in ("seccompProfile", "appArmorProfile"):
        if security.get(profile, {}).get("type") == "Unconfined":
            found.append(f"pod {profile} Unconfined")
    return found


def _container_violations(
    container: Mapping[str, Any], pod_security: Mapping[str, Any]
) -> list[str]:
    context = container.get("securityContext", {})
    capabilities = context.get("capabilities", {})
    seccomp = context.get("seccompProfile", pod_security.get("seccompProfile", {}))
    checks = {
        "privileged": bool(context.get("privileged")),
        "allowPrivilegeEscalation must be false": context.get("allowPrivilegeEscalation")
        is not False,
        "capabilities must drop ALL": "ALL" not in capabilities.get("drop", []),
        "adds capabilities beyond NET_BIND_SERVICE": bool(
            set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}
        ),
        "runAsNonRoot must be true": context.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        is not True,
        "runAsUser 0": context.get("runAsUser") == 0,
        "seccompProfile must be RuntimeDefault or Localhost": seccomp.get("type")
        not in {"RuntimeDefault", "Localhost"},
        "appArmorProfile Unconfined": context.get("appArmorProfile", {}).get("type")
        == "Unconfined",
        "procMount must be Default": context.get("procMount", "Default") != "Default",
        "hostPort": any(port.get("hostPort") for port in container.get("ports", [])),
        "seLinuxOptions type": context.get("seLinuxOptions", {}).get("type", "")
        not in _SELINUX_TYPES,
    }
    return [rule for rule, broken in checks.items() if broken]
