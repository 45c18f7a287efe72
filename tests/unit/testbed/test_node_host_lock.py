"""Only one real-node bed per host: the lock, and a namespace that is not ours left alone."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from phonefleet_testbed.node import network
from phonefleet_testbed.node.host_lock import NodeBedBusy, exclusive_node_bed
from phonefleet_testbed.node.network import NodeNetwork


def test_a_second_bed_is_refused_naming_the_first_and_may_start_once_it_ended(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "node.lock"
    busy = pytest.raises(NodeBedBusy, match=f"process {os.getpid()}")
    with exclusive_node_bed(lock), busy, exclusive_node_bed(lock):
        pass
    with exclusive_node_bed(lock):
        assert lock.read_text() == f"{os.getpid()}\n"


def test_create_leaves_a_namespace_that_already_exists_to_its_owner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ip netns add`` fails when another bed's namespace exists: nothing is deleted."""
    calls: list[tuple[str, ...]] = []

    def fake_ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
        calls.append(args)
        if args[:2] == ("netns", "add"):
            raise RuntimeError("ip netns add phonefleet-node failed: File exists")
        return ""

    monkeypatch.setattr(network, "ip", fake_ip)
    bed_network = NodeNetwork(
        ipaddress.IPv4Network("10.250.0.0/30"), ipaddress.IPv4Network("10.251.0.0/24")
    )
    with pytest.raises(RuntimeError, match="File exists"):
        bed_network.create()

    assert calls == [("netns", "add", "phonefleet-node")]
