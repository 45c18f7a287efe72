"""Configuration files of the real node's daemons, each key here because a run failed without it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phonefleet_testbed.node.binaries import CNI_BIN_DIR, RUNC

__all__ = [
    "BRIDGE",
    "PAUSE_IMAGE",
    "cni_config",
    "containerd_config",
    "kube_proxy_config",
    "kubelet_config",
]

PAUSE_IMAGE = "phonefleet.local/pause:1"
BRIDGE = "pfbr0"


def containerd_config(work: Path, socket: Path) -> str:
    """containerd 2.x (config version 3) with every path under ``work``."""
    cri = "plugins.'io.containerd.cri.v1.runtime'"
    runc = f"{cri}.containerd.runtimes.runc"
    return f"""version = 3
root = "{work / "root"}"
state = "{work / "state"}"
# Neither is used by the node; NRI would also listen on a fixed socket path.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{work / "opt"}"

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[{cri}]
  # Root here lacks CAP_SYS_RESOURCE: without it runc cannot lower its own oom_score_adj and
  # every sandbox fails ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  # Pod network namespaces under our state dir, not in the host's /var/run/netns.
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    default_runtime_name = "runc"
  [{runc}]
    runtime_type = "io.containerd.runc.v2"
  [{runc}.options]
    BinaryName = "{RUNC}"
    SystemdCgroup = false
  [{cri}.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{work / "cni"}"
"""


def cni_config(pod_cidr: str, ipam_dir: Path) -> str:
    """A bridge network for the pods, with host-local addresses recorded under ``ipam_dir``."""
    network: dict[str, Any] = {
        "cniVersion": "1.0.0",
        "name": "phonefleet-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No masquerading: nothing routes beyond the namespace, and no rule is needed.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(network, indent=2)


def kubelet_config(
    *, work: Path, runtime_socket: Path, ca_file: Path, healthz_port: int, max_pods: int
) -> dict[str, Any]:
    """The KubeletConfiguration of a node that shares a cgroup v1 machine with other work."""
    endpoint = f"unix://{runtime_socket}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,  # the machine is cgroup v1 (hybrid)
        "failSwapOn": False,
        # Else the kubelet adds a KUBE-FIREWALL chain; harmless in our namespace, but not needed.
        "makeIPTablesUtilChains": False,
        "containerRuntimeEndpoint": endpoint,
        "imageServiceEndpoint": endpoint,
        "staticPodPath": str(work / "manifests"),
        "podLogsDir": str(work / "pod-logs"),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_file)},
        },
        # The apiserver's client certificate is in system:masters; nothing else reaches this port.
        "authorization": {"mode": "AlwaysAllow"},
        # A small CI disk would otherwise report DiskPressure and evict the pods under test.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "maxPods": max_pods,
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "10s",
        # Mounted Secrets are refreshed at each pod sync: within about 10 s here instead of the
        # default minute, so tests of a worker reading new Secret content wait less.
        "syncFrequency": "10s",
        "resolvConf": "",  # no cluster DNS and no host resolver: no query can leave the machine
        "registerNode": True,
    }


def kube_proxy_config(
    *, kubeconfig: Path, cluster_cidr: str, healthz_port: int, metrics_port: int
) -> dict[str, Any]:
    """iptables mode, touching no machine-wide conntrack setting."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "clusterCIDR": cluster_cidr,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # Zero means "leave it": these are the machine's, not the namespace's.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
