"""`phonefleet dev up` / `dev env`: the embedded default runs, is reachable, and cleans up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import requests

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.waiting import wait_for

BIN = Path(sys.executable).parent


def _port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.hostname or "", parsed.port or 0)) == 0


def test_dev_up_serves_a_control_plane_and_simulator_until_interrupted(tmp_path: Path) -> None:
    """`dev up` prints its start-up time, `dev env` points kubectl at it, the phones
    manifests/samples name exist there (validate resolves them, the samples apply), Ctrl+C
    stops it all."""
    env = {**os.environ, "PHONEFLEET_DEV_STATE_DIR": str(tmp_path / "dev")}
    up = subprocess.Popen(
        [str(BIN / "phonefleet"), "dev", "up", "--phones", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env_file = tmp_path / "dev" / "env"
        wait_for(env_file.is_file, 60, message="dev up to write its env file")
        printed = subprocess.run(
            [str(BIN / "phonefleet"), "dev", "env"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in printed.splitlines()
            if line.startswith("export ") and "PATH" not in line
        )
        kubectl = exports["PHONEFLEET_KUBECTL"]
        nodes = subprocess.run(
            [kubectl, f"--kubeconfig={exports['KUBECONFIG']}", "get", "nodes"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "kwok-node-0" in nodes
        phones = requests.post(
            f"{exports['PHONEFLEET_GEELARK_URL']}/open/v1/phone/list",
            json={"page": 1, "pageSize": 10},
            headers={
                "traceId": "t-1",
                "Authorization": f"Bearer {exports['PHONEFLEET_GEELARK_TOKEN']}",
            },
            timeout=5,
        ).json()
        # phone-001 ... phone-003, and the phones manifests/samples name: they resolve
        assert phones["data"]["total"] == 3 + 4
        validated = subprocess.run(
            [str(BIN / "phonefleet"), "bindings", "validate", "manifests/samples"],
            env={**env, **exports},
            capture_output=True,
            text=True,
            check=False,
            cwd=repo_root(),
        )
        assert validated.returncode == 0, validated.stdout + validated.stderr
        applied = subprocess.run(
            [kubectl, f"--kubeconfig={exports['KUBECONFIG']}", "apply", "-k", "manifests/samples"],
            capture_output=True,
            text=True,
            check=True,
            cwd=repo_root(),
        ).stdout
        assert applied.count("created") == 4
        server = subprocess.run(
            [
                kubectl,
                f"--kubeconfig={exports['KUBECONFIG']}",
                "config",
                "view",
                "--minify",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "started in" in output
    assert not env_file.exists()
    assert not _port_open(server)
    assert not _port_open(exports["PHONEFLEET_GEELARK_URL"])
