"""``python -m bench.real_node``: apply -> Running on the real node against KWOK, and pod memory.

One control plane with both nodes. The same operator (in-process) and simulator serve the same
bindings twice: once with only the real node schedulable (pods really run: worker, Appium, the
phone's adbd), once with only the KWOK node (Ready at once). Prints bring-up time, apply ->
Running for 1 and for N bindings applied at once on each node, their ratio, and the RSS of a
worker pod (its processes plus its containerd shim). Needs root (see docs/real-node.md).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from phonefleet_testbed.controlplane import KWOK_NODE_NAME
from phonefleet_testbed.devenv import install_crds
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.geelark_sim import GeelarkSimulator
from phonefleet_testbed.node import NODE_NAME, NodeBed, real_node_bed, real_node_unavailable
from phonefleet_testbed.node.images import ensure_images
from phonefleet_testbed.node.teardown import POD_CGROUP
from phonefleet_testbed.node.workload import fake_driver_worker, node_operator_env, node_simulator
from phonefleet_testbed.rbac import operator_kubeconfig
from phonefleet_testbed.scenarios import in_process_operator, make_binding
from phonefleet_testbed.waiting import wait_for

# Small requests: the node has 2 cores, and the defaults (250m a pod) would cap it at 8 pods.
_SMALL = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}


def _apply_and_wait(kubectl: Kubectl, sim: GeelarkSimulator, namespace: str, count: int) -> float:
    """Seconds from applying ``count`` bindings at once to all of them Running."""
    kubectl("create", "namespace", namespace)
    wait_for(lambda: kubectl.get("serviceaccount", "default", namespace), 30)
    phones = [sim.admin.create_phone(f"{namespace}-{n}").id for n in range(count)]
    worker = fake_driver_worker(resources=_SMALL)
    items = [
        make_binding(f"b{n}", phone, namespace, worker=worker, appium={"resources": _SMALL})
        for n, phone in enumerate(phones)
    ]
    began = time.monotonic()
    kubectl.apply({"apiVersion": "v1", "kind": "List", "items": items})

    def all_running() -> bool:
        listed = kubectl.list("phonebindings", namespace)
        return len(listed) == count and all(
            b.get("status", {}).get("phase") == "Running" for b in listed
        )

    wait_for(all_running, 600, interval=0.2, message=f"{count} bindings Running in {namespace}")
    return time.monotonic() - began


def _release(kubectl: Kubectl, namespace: str) -> None:
    kubectl("delete", "phonebindings", "--all", "-n", namespace, "--wait=false")
    wait_for(lambda: not kubectl.list("phonebindings", namespace), 300, interval=0.5)
    kubectl("delete", "namespace", namespace, "--wait=false")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _pod_rss_mib(pods: int) -> float:
    """Mean RSS of one running pod: its processes (any v1 hierarchy lists them) and its shim."""
    root = Path("/sys/fs/cgroup/pids") / POD_CGROUP
    pids = {int(p) for f in root.rglob("cgroup.procs") for p in f.read_text().split()}
    shims = {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (entry / "comm").exists()
        and (entry / "comm").read_text().strip().startswith("containerd-shim")
    }
    total = sum(_rss_kib(pid) for pid in pids | shims)
    return total / 1024 / pods


def _run(bed: NodeBed, count: int) -> dict[str, float]:
    images = ensure_images()
    bed.node.import_images(*images.all)
    install_crds(bed.plane)
    kubectl = Kubectl(bed.plane)
    credentials = operator_kubeconfig(bed.plane)
    figures: dict[str, float] = {}
    with node_simulator(bed) as sim:
        os.environ.update(node_operator_env(bed, images, sim))
        os.environ["KUBECONFIG"] = str(credentials)
        command = ["run", "--standalone", "--all-namespaces", "-m", "phonefleet_operator.main"]
        # A daemon thread: an operator that does not stop fails the bench instead of holding it.
        with in_process_operator(*command, timeout=120):
            for target, other in ((NODE_NAME, KWOK_NODE_NAME), (KWOK_NODE_NAME, NODE_NAME)):
                kubectl("cordon", other)
                kubectl("uncordon", target)
                label = "real" if target == NODE_NAME else "kwok"
                for n in (1, count):
                    namespace = f"bench-{label}-{n}"
                    figures[f"{label} {n}"] = _apply_and_wait(kubectl, sim, namespace, n)
                    if label == "real" and n == count:
                        figures["rss per pod MiB"] = _pod_rss_mib(n)
                    _release(kubectl, namespace)
    return figures


@click.command()
@click.option("--bindings", "-n", default=20, show_default=True, help="Bindings applied at once.")
def main(bindings: int) -> None:
    """Measure the real node against KWOK and print the figures."""
    reason = real_node_unavailable()
    if reason:
        raise click.ClickException(f"A real node cannot run here: {reason}")
    began = time.monotonic()
    with real_node_bed(keep_kwok_node=True) as bed:
        bring_up = time.monotonic() - began
        figures = _run(bed, bindings)
    print(f"bring-up (control plane + real node): {bring_up:.1f} s  {bed.startup_seconds}")
    for n in (1, bindings):
        real, kwok = figures[f"real {n}"], figures[f"kwok {n}"]
        print(f"apply -> Running, {n:>3} binding(s): real {real:6.1f} s  kwok {kwok:6.1f} s  "
              f"ratio {real / kwok:4.1f}x")  # fmt: skip
    rss = figures["rss per pod MiB"]
    print(f"RSS per worker pod (worker, Appium, adb, pause, shim): {rss:.0f} MiB")
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
