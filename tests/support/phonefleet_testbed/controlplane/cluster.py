"""A real Kubernetes control plane on loopback: etcd, apiserver, controllers, scheduler, KWOK."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from phonefleet_testbed.binaries import Binaries
from phonefleet_testbed.controlplane.certs import CertificateAuthority, write_service_account_keys
from phonefleet_testbed.controlplane.kwok_stages import stages_document
from phonefleet_testbed.kubeconfig import write_kubeconfig
from phonefleet_testbed.leftovers import make_run_folder
from phonefleet_testbed.lifecycle import StartStop
from phonefleet_testbed.processes import ManagedProcess, ProcessGroup, free_port

__all__ = ["KWOK_NODE_NAME", "PROFILING_ENV", "ControlPlane"]

KWOK_NODE_NAME = "kwok-node-0"

_SERVICE_CIDR = "10.0.0.0/24"
_POD_CIDR = "10.244.0.0/16"
_KWOK_NODE_IP = "127.0.0.1"
_SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Set to 1 by the bench's `--apiserver-profile` only: serves /debug/pprof on the API server (to
# system:masters, as every non-resource URL here). Tests and the dev environment keep it off.
PROFILING_ENV = "PHONEFLEET_TESTBED_APISERVER_PROFILING"

# One simulated node with room for a large fleet. No taint: pods schedule onto it as they would
# onto a real node, and KWOK (which owns nodes carrying this annotation) plays their kubelet.
_KWOK_NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": KWOK_NODE_NAME,
        "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        "labels": {
            "kubernetes.io/hostname": KWOK_NODE_NAME,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
        },
    },
    "status": {
        "allocatable": {"cpu": "4000", "memory": "16Ti", "pods": "20000"},
        "capacity": {"cpu": "4000", "memory": "16Ti", "pods": "20000"},
    },
}


class ControlPlane(StartStop):
    """Starts and stops one control plane; every file it writes lives in ``work_dir``.

    Use as a context manager. ``kubeconfig`` is an admin (system:masters) kubeconfig;
    ``mint_user_kubeconfig`` and ``mint_service_account_kubeconfig`` give narrower ones.
    """

    def __init__(
        self,
        binaries: Binaries | None = None,
        work_dir: Path | None = None,
        *,
        bind_address: str = "127.0.0.1",
    ) -> None:
        self.binaries = binaries or Binaries.ensure()
        # A real node's pods reach the API server on a non-loopback address (the host end of the
        # node's veth pair); by default it stays on loopback.
        self.bind_address = bind_address
        self._own_work_dir = work_dir is None
        # A run's own folder records its pid; folders of runs that died (SIGKILL) go here.
        self.work_dir = work_dir or make_run_folder("phonefleet-cp-")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.pki_dir = self.work_dir / "pki"
        self.log_dir = self.work_dir / "logs"
        self.ca = CertificateAuthority()
        self.api_port = free_port()
        self.server = f"https://{bind_address}:{self.api_port}"
        self.kubeconfig = self.work_dir / "admin.kubeconfig"
        self._processes = ProcessGroup(self.log_dir)
        #: Seconds each component took to serve, and the ``total``.
        self.startup_seconds = self._processes.startup_seconds

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> None:
        """Start every component and return once pods can be created and scheduled."""
        began = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds["total"] = time.monotonic() - began

    def stop(self) -> None:
        """Stop every component, newest first, and remove the work dir if it was ours."""
        self._processes.stop()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _start(self, timeout: float) -> None:
        self.pki_dir.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._write_pki()
        self._processes.step("etcd", self._start_etcd, timeout)
        self._processes.step("kube-apiserver", self._start_apiserver, timeout)
        self._processes.step("controllers", self._start_controllers, timeout)
        self._processes.step("kwok-node", self._start_kwok, timeout)

    # ----------------------------------------------------------------- components

    def _write_pki(self) -> None:
        (self.pki_dir / "ca.crt").write_bytes(self.ca.cert_pem)
        self.ca.key_pair.write(self.pki_dir, "ca")
        hosts = (
            *dict.fromkeys(("127.0.0.1", self.bind_address)),
            "localhost",
            "10.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
        self.ca.issue("kube-apiserver", hosts=hosts, server=True).write(self.pki_dir, "apiserver")
        write_service_account_keys(self.pki_dir)
        admin = self.ca.issue("phonefleet-admin", organizations=("system:masters",))
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_pem=self.ca.cert_pem,
            user="phonefleet-admin",
            cert_pem=admin.cert_pem,
            key_pem=admin.key_pem,
        )
        admin.write(self.pki_dir, "admin")

    def _start_etcd(self, timeout: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._processes.start(
            "etcd",
            [
                str(self.binaries.path("etcd")),
                "--name=testbed",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=testbed=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # throw-away data: durability costs seconds per test run
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            reply = requests.get(f"{self.etcd_url}/health", timeout=2)
            return bool(reply.ok and reply.json().get("health") == "true")

        self._processes.wait_ready(healthy, timeout, message="etcd to report healthy")

    def _start_apiserver(self, timeout: float) -> None:
        pki = self.pki_dir
        loopback = self.bind_address.startswith("127.")
        self._processes.start(
            "kube-apiserver",
            [
                str(self.binaries.path("kube-apiserver")),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.bind_address}",
                # Without it the apiserver looks for a default route, which sandboxes lack.
                f"--advertise-address={self.bind_address}",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-issuer={_SA_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={_SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                # The default admission chain stays on (PodSecurity, ServiceAccount,
                # ValidatingAdmissionWebhook, ...); nothing is disabled for convenience.
                "--allow-privileged=true",
                # 127.0.0.1 is not a valid Endpoints address; a real node's pods need the
                # "kubernetes" Service's endpoints, at the non-loopback bind address.
                f"--endpoint-reconciler-type={'none' if loopback else 'lease'}",
                # A real node: reach kubelets by the address they report (never a DNS lookup of
                # the node's name), as a client they trust, and webhooks at their pods' IPs.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki / 'admin.crt'}",
                f"--kubelet-client-key={pki / 'admin.key'}",
                "--enable-aggregator-routing=true",
                f"--profiling={str(os.environ.get(PROFILING_ENV) == '1').lower()}",
                "--max-requests-inflight=800",
                "--max-mutating-requests-inflight=400",
            ],
        )
        self._wait_apiserver_ready(timeout, "kube-apiserver /readyz")

    def _wait_apiserver_ready(self, timeout: float, what: str) -> None:
        """Return once kube-apiserver answers /readyz with 200 (while it and etcd run: other
        components may have exited, see ``restart_exited``)."""
        pki = self.pki_dir

        def ready() -> bool:
            reply = requests.get(
                f"{self.server}/readyz",
                cert=(str(pki / "admin.crt"), str(pki / "admin.key")),
                verify=str(pki / "ca.crt"),
                timeout=2,
            )
            return reply.status_code == 200

        watching = [self.component("etcd"), self.component("kube-apiserver")]
        self._processes.wait_ready(ready, timeout, message=what, watching=watching)

    def _component_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        return self.mint_user_kubeconfig(user, groups)

    def _controller_flags(self, user: str) -> list[str]:
        """Flags every controller process takes: its own kubeconfig for each purpose, a
        loopback port of its own, no leader election (one of each)."""
        kubeconfig = self._component_kubeconfig(user)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--leader-elect=false",
        ]

    def _start_controllers(self, timeout: float) -> None:
        self._processes.start(
            "kube-controller-manager",
            [
                str(self.binaries.path("kube-controller-manager")),
                *self._controller_flags("system:kube-controller-manager"),
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.pki_dir / 'sa.key'}",
                f"--root-ca-file={self.pki_dir / 'ca.crt'}",
                f"--cluster-signing-cert-file={self.pki_dir / 'ca.crt'}",
                f"--cluster-signing-key-file={self.pki_dir / 'ca.key'}",
                f"--service-cluster-ip-range={_SERVICE_CIDR}",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-gc-syncs=20",
            ],
        )
        self._processes.start(
            "kube-scheduler",
            [
                str(self.binaries.path("kube-scheduler")),
                *self._controller_flags("system:kube-scheduler"),
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )

        # The service-account controller creating "default" proves the controllers are working.
        def default_service_account() -> bool:
            return (
                self.kubectl(
                    "get", "serviceaccount", "default", "-n", "default", check=False
                ).returncode
                == 0
            )

        self._processes.wait_ready(
            default_service_account, timeout, message="the default ServiceAccount"
        )

    def _start_kwok(self, timeout: float) -> None:
        stages = self.work_dir / "kwok-stages.yaml"
        stages.write_text(stages_document(self.binaries.kwok_stages))
        kwok_kubeconfig = self._component_kubeconfig("kwok-controller", ("system:masters",))
        self._processes.start(
            "kwok",
            [
                str(self.binaries.path("kwok")),
                f"--kubeconfig={kwok_kubeconfig}",
                f"--config={stages}",
                f"--manage-single-node={KWOK_NODE_NAME}",
                f"--cidr={_POD_CIDR}",
                # The node's InternalIP, where the API server dials its "kubelet" (kubectl logs,
                # exec): on loopback it stays on the machine; 10.244.0.1 followed the default
                # route off it. (Pods' IPs cannot be loopback: kwok_stages.py.)
                f"--node-ip={_KWOK_NODE_IP}",
                "--node-lease-duration-seconds=40",
                "--server-address=127.0.0.1:0",
            ],
        )
        self.kubectl("apply", "-f", "-", input_text=json.dumps(_KWOK_NODE))

        def node_ready() -> bool:
            out = self.kubectl(
                "get",
                "node",
                KWOK_NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            )
            return out.stdout.strip() == "True"

        self._processes.wait_ready(
            node_ready, timeout, message=f"node {KWOK_NODE_NAME} to be Ready"
        )

    def restart_apiserver(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        """Stop kube-apiserver (SIGTERM, or SIGKILL with ``kill``) and start it again on the same
        port, certificates and etcd; every client sees its watches end and must relist."""
        apiserver = self.component("kube-apiserver")
        if kill and apiserver.pid is not None:
            os.kill(apiserver.pid, signal.SIGKILL)
        apiserver.stop()
        apiserver.start()
        self._wait_apiserver_ready(timeout, "kube-apiserver /readyz after a restart")

    def restart_exited(self) -> list[str]:
        """Start every component that has exited again, as a kubelet restarts its static pods;
        return their names. (kube-scheduler exits on purpose when a watch gap left its cache
        inconsistent: "Scheduler cache is corrupted".)"""
        revived = [p for p in self._processes if not p.is_running()]
        for process in revived:
            process.start()
        return [p.name for p in revived]

    def component(self, name: str) -> ManagedProcess:
        """The process of one component ("etcd", "kube-apiserver", "kwok", ...)."""
        return self._processes[name]

    # ----------------------------------------------------------------- access

    def kubectl(
        self,
        *args: str,
        input_text: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this control plane and return its result."""
        result = subprocess.run(
            [
                str(self.binaries.path("kubectl")),
                f"--kubeconfig={kubeconfig or self.kubeconfig}",
                *args,
            ],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result

    def mint_user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for ``user`` in ``groups``, authenticated by a client certificate."""
        pair = self.ca.issue(user, organizations=groups)
        safe = user.replace(":", "_")
        return write_kubeconfig(
            self.work_dir / f"{safe}.kubeconfig",
            server=self.server,
            ca_pem=self.ca.cert_pem,
            user=user,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
        )

    def mint_service_account_kubeconfig(
        self, namespace: str, name: str, duration: str = "24h"
    ) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount through a TokenRequest."""
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}")
        return write_kubeconfig(
            self.work_dir / f"sa_{namespace}_{name}.kubeconfig",
            server=self.server,
            ca_pem=self.ca.cert_pem,
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token.stdout.strip(),
            namespace=namespace,
        )

    def process_logs(self) -> dict[str, Path]:
        """Log file of each component, for debugging failed tests."""
        return {p.name: p.log_path for p in self._processes}
