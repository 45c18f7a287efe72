"""The worker image: its command line, its adb, its probes and a clean stop on SIGTERM."""

from __future__ import annotations

import pytest
from docker_support import Images, docker, http_get, running

from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_for

OPTIONS = (
    "--phone-id",
    "--adb-secret-dir",
    "--appium-url",
    "--adb-server",
    "--probe-port",
    "--system-port",
    "--log-level",
    "--task",
)


@pytest.mark.parametrize(
    "args",
    [pytest.param((), id="missing"), pytest.param(("--phone-id", ""), id="empty")],
)
def test_worker_without_phone_id_exits_2_naming_the_flag(
    images: Images, args: tuple[str, ...]
) -> None:
    """Without a phone id the worker exits with status 2 and names the --phone-id flag."""
    result = docker("run", "--rm", "--network", "none", images.worker, *args, check=False)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "--phone-id" in result.stderr


def test_worker_help_lists_the_options(images: Images) -> None:
    """`phonefleet-worker --help` exits 0 and lists every option."""
    result = docker("run", "--rm", "--network", "none", images.worker, "--help", check=False)

    assert result.returncode == 0, result.stderr
    assert [option for option in OPTIONS if option not in result.stdout] == []


def test_worker_image_has_adb(images: Images) -> None:
    """The worker image carries the adb client the worker runs."""
    result = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "adb", images.worker, "version"
    )

    assert result.stdout.startswith("Android Debug Bridge version")


def test_worker_waiting_for_its_phone_is_live_not_ready_and_stops_with_0(images: Images) -> None:
    """A worker without connection data is live but not ready, and `docker stop` ends it with 0."""
    port = free_port()
    with running(
        images.worker,
        "--phone-id", "526209711930868736",
        "--adb-secret-dir", "/nonexistent",
        "--probe-port", str(port),
    ) as worker:  # fmt: skip
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{port}/livez")[0] == 200 or not worker.is_running(),
            60,
            interval=0.2,
            message=lambda: f"the worker's /livez on port {port}; its logs:\n{worker.logs()}",
        )
        assert worker.is_running(), worker.logs()
        assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 503

        exit_code = worker.stop()

        assert exit_code == 0, worker.logs()
