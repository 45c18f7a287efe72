"""`phonefleet dev demo --keep`: everything runs until Ctrl+C or SIGTERM, then it cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from phonefleet_testbed.waiting import wait_for

BIN = Path(sys.executable).parent


def test_a_kept_demo_ends_and_cleans_up_on_sigterm() -> None:
    """After "Everything keeps running", SIGTERM (`kill`, `timeout`, a service manager) ends the
    demo as Ctrl+C does: the bindings are deleted with no phone left running, its control plane
    folder is removed, and it exits 0. Before, the demo waited in sigwait() with no handler for
    SIGTERM, whose default action killed it on the spot, cleaning up nothing."""
    demo = subprocess.Popen(
        [str(BIN / "phonefleet"), "dev", "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a demo that hangs is ended whole
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or ()), daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: any("Everything keeps running" in line for line in lines),
            240,
            message=lambda: "the demo to settle and wait for Ctrl+C\n" + "".join(lines[-40:]),
        )
        exported = next(line for line in lines if line.startswith("  export KUBECONFIG="))
        plane_folder = Path(exported.split("=", 1)[1].strip()).parent
        assert plane_folder.is_dir()
        demo.send_signal(signal.SIGTERM)
        try:
            returncode = demo.wait(timeout=120)
        except subprocess.TimeoutExpired:
            returncode = None
        assert returncode == 0, "".join(lines[-40:])
    finally:
        if demo.poll() is None:  # a demo that ignored the signal: end it and what it started
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait(timeout=60)
        reader.join(timeout=10)
    assert "Deleted every binding; phones still running: 0.\n" in lines
    assert not plane_folder.exists()
