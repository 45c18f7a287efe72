"""A real node beside the test bed's control plane: containerd, kubelet, kube-proxy in a namespace.

The daemons share one network namespace (:mod:`phonefleet_testbed.node.network`) and one mount
namespace held by a sleeping process. In that mount namespace, tmpfs covers the fixed paths the
kubelet and containerd write to whatever their configuration says (``/run``, ``/var/lib/kubelet``,
``/var/log/containers``, ``/var/lib/cni``), so neither they nor any mount outlive the node.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from phonefleet_testbed.controlplane import ControlPlane
from phonefleet_testbed.kubeconfig import write_kubeconfig
from phonefleet_testbed.lifecycle import StartStop
from phonefleet_testbed.node.binaries import NodeBinaries
from phonefleet_testbed.node.config import (
    PAUSE_IMAGE,
    cni_config,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from phonefleet_testbed.node.network import NodeNetwork
from phonefleet_testbed.node.pause_image import write_pause_archive
from phonefleet_testbed.node.teardown import (
    kill_namespace_processes,
    kill_pod_processes,
    remove_pod_cgroups,
)
from phonefleet_testbed.processes import ManagedProcess, ProcessGroup, free_port
from phonefleet_testbed.waiting import wait_for

__all__ = ["NODE_NAME", "RealNode"]

NODE_NAME = "phonefleet-node"
# Written whatever the configuration says; covered by tmpfs inside the node's mount namespace.
_FIXED_PATHS = (
    Path("/run"),
    Path("/var/lib/kubelet"),
    Path("/var/log/containers"),
    Path("/var/lib/cni"),
)


class RealNode(StartStop):
    """One real node registered with ``plane``, on ``network`` (created by the caller).

    ``plane`` must listen on ``network.host_ip`` (``ControlPlane(bind_address=...)``): the kubelet,
    kube-proxy and the pods reach the API server there.
    """

    def __init__(
        self,
        plane: ControlPlane,
        network: NodeNetwork,
        *,
        binaries: NodeBinaries | None = None,
        max_pods: int = 110,
    ) -> None:
        self.plane = plane
        self.network = network
        self.binaries = binaries or NodeBinaries.ensure()
        self.max_pods = max_pods
        self.name = NODE_NAME
        self.work_dir = Path(tempfile.mkdtemp(prefix="pf-node-"))
        self.log_dir = self.work_dir / "logs"
        self.socket = self.work_dir / "containerd.sock"
        self._processes = ProcessGroup(self.log_dir)
        #: Seconds each daemon took to serve, and the ``total``.
        self.startup_seconds = self._processes.startup_seconds
        self._holder: ManagedProcess | None = None
        self._namespace_inodes: set[tuple[str, int]] = set()
        self._made_dirs: list[Path] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 90.0) -> None:
        """Start the daemons and return once the node is Ready and kube-proxy serves."""
        began = time.monotonic()
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._processes.step("namespace", self._start_holder, timeout)
            self._processes.step("containerd", self._start_containerd, timeout)
            self._processes.step("kubelet", self._start_kubelet, timeout)
            self._processes.step("kube-proxy", self._start_kube_proxy, timeout)
        except BaseException as error:
            for note in self._processes.log_tails():  # the work dir (and logs) go with stop()
                error.add_note(note)
            self.stop()
            raise
        self.startup_seconds["total"] = time.monotonic() - began

    def stop(self) -> None:
        """Stop everything the node started and remove every trace of it from the host."""
        for process in reversed(list(self._processes)):
            if process.name != "containerd":
                process.stop()
        if self._namespace_inodes:
            kill_pod_processes()
        self._processes.stop()
        if self._namespace_inodes:
            kill_namespace_processes(self._namespace_inodes)
            self._namespace_inodes.clear()
        if self._holder is not None:
            self._holder.stop()
            self._holder = None
        remove_pod_cgroups()
        for directory in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._made_dirs.clear()
        self.plane.kubectl("delete", "node", self.name, "--ignore-not-found", check=False)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # ----------------------------------------------------------------- daemons

    def _start_holder(self, timeout: float) -> None:
        """A sleeping process owning the node's mount namespace, entered by every daemon."""
        for path in _FIXED_PATHS:
            missing = [p for p in (path, *path.parents) if not p.exists()]
            for directory in reversed(missing):
                directory.mkdir()
                self._made_dirs.append(directory)
        ready = self.work_dir / "namespace-ready"
        mounts = "; ".join(f"mount -t tmpfs -o mode=0755 phonefleet-node {p}" for p in _FIXED_PATHS)
        holder = ManagedProcess(
            "namespace",
            [
                "unshare",
                "--mount",
                "--propagation=slave",
                "nsenter",
                f"--net=/run/netns/{self.network.namespace}",
                "sh",
                "-ec",
                f"{mounts}; touch {ready}; exec sleep infinity",
            ],
            self.log_dir,
        )
        holder.start()
        self._holder = holder

        def entered() -> bool:
            holder.check_running()
            return ready.exists()

        wait_for(entered, timeout, message="the node's namespaces")
        proc = Path(f"/proc/{holder.pid}/ns")
        self._namespace_inodes = {
            ("net", os.stat(proc / "net").st_ino),
            ("mnt", os.stat(proc / "mnt").st_ino),
        }

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """Freeze one of the node's daemons for the block (SIGSTOP; SIGCONT whatever happens): a
        paused kubelet neither syncs pods nor kills their containers, as on a node cut off."""
        pid = next(p.pid for p in self._processes if p.name == name)
        assert pid is not None, f"{name} does not run"
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def in_node(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the node's network and mount namespaces."""
        assert self._holder is not None
        assert self._holder.pid is not None
        return ["nsenter", f"--target={self._holder.pid}", "--mount", "--net", "--", *argv]

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start a daemon inside the node's namespaces."""
        self._processes.start(name, self.in_node(argv), env=env)

    def _start_containerd(self, timeout: float) -> None:
        work = self.work_dir / "containerd"
        (work / "cni").mkdir(parents=True)
        (work / "cni" / "10-phonefleet.conflist").write_text(
            cni_config(str(self.network.pod_cidr), work / "ipam")
        )
        config = work / "config.toml"
        config.write_text(containerd_config(work, self.socket))
        # containerd finds its shim on PATH.
        path = (
            f"{self.binaries.directory}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        )
        self._spawn(
            "containerd",
            [str(self.binaries.path("containerd")), f"--config={config}", "--log-level=warn"],
            env={"PATH": path},
        )

        def answers() -> bool:
            return self.ctr("version", check=False).returncode == 0

        self._processes.wait_ready(answers, timeout, message="containerd to answer")
        archive = write_pause_archive(
            self.binaries.path("pause"), PAUSE_IMAGE, self.work_dir / "pause.tar"
        )
        self.ctr("images", "import", "--local", str(archive))

    def ctr(
        self, *args: str, input_bytes: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ctr against the node's containerd, in its ``k8s.io`` namespace."""
        argv = [str(self.binaries.path("ctr")), f"--address={self.socket}", "--namespace=k8s.io"]
        result = subprocess.run(
            [*argv, *args], input=input_bytes, capture_output=True, timeout=300, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"ctr {' '.join(args)} failed: {result.stderr.decode(errors='replace')}"
            )
        return result

    def import_images(self, *images: str) -> None:
        """Copy images from the local Docker engine into the node (no registry anywhere)."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert save.stdout is not None
        try:
            result = subprocess.run(
                [
                    str(self.binaries.path("ctr")),
                    f"--address={self.socket}",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    "--local",
                    "-",
                ],
                stdin=save.stdout,
                capture_output=True,
                timeout=600,
                check=False,
            )
        finally:
            save.stdout.close()
            save.wait(60)
        if save.returncode != 0 or result.returncode != 0:
            raise RuntimeError(
                f"Importing {images} failed: {result.stderr.decode(errors='replace')}"
            )

    def _kubeconfig(self, user: str, groups: tuple[str, ...]) -> Path:
        pair = self.plane.ca.issue(user, organizations=groups)
        return write_kubeconfig(
            self.work_dir / f"{user.replace(':', '_')}.kubeconfig",
            server=self.plane.server,
            ca_pem=self.plane.ca.cert_pem,
            user=user,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
        )

    def _start_kubelet(self, timeout: float) -> None:
        work = self.work_dir / "kubelet"
        (work / "manifests").mkdir(parents=True)
        config = work / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                kubelet_config(
                    work=work,
                    runtime_socket=self.socket,
                    ca_file=self.plane.pki_dir / "ca.crt",
                    healthz_port=free_port(),
                    max_pods=self.max_pods,
                )
            )
        )
        kubeconfig = self._kubeconfig(f"system:node:{self.name}", ("system:nodes",))
        self._spawn(
            "kubelet",
            [
                str(self.binaries.path("kubelet")),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.network.node_ip}",
                f"--root-dir={work / 'root'}",
                f"--cert-dir={work / 'pki'}",
                "--v=1",
            ],
        )

        def ready() -> bool:
            out = self.plane.kubectl(
                "get",
                "node",
                self.name,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return out.stdout.strip() == "True"

        self._processes.wait_ready(
            ready, timeout, interval=0.2, message=f"node {self.name} to be Ready"
        )

    def _start_kube_proxy(self, timeout: float) -> None:
        kubeconfig = self._kubeconfig("system:kube-proxy", ())
        port = free_port()
        config = self.work_dir / "kube-proxy.yaml"
        config.write_text(
            yaml.safe_dump(
                kube_proxy_config(
                    kubeconfig=kubeconfig,
                    cluster_cidr=str(self.network.pod_cidr),
                    healthz_port=port,
                    metrics_port=free_port(),
                )
            )
        )
        self._spawn(
            "kube-proxy",
            [
                str(self.binaries.path("kube-proxy")),
                f"--config={config}",
                f"--hostname-override={self.name}",
                "--v=1",
            ],
        )

        def healthy() -> bool:
            # /healthz answers 200 once kube-proxy has written the Services' rules.
            url = f"http://127.0.0.1:{port}/healthz"
            code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=2)"
            probe = self.in_node([sys.executable, "-c", code])
            return (
                subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
            )

        self._processes.wait_ready(healthy, timeout, interval=0.2, message="kube-proxy to serve")

    def process_logs(self) -> dict[str, Path]:
        """Log file of each daemon, for debugging failed tests."""
        return {p.name: p.log_path for p in self._processes}
