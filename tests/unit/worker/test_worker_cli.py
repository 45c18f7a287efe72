"""The phonefleet-worker command line: options, environment, usage errors and a real SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from worker_fakes import PHONE_ID

from phonefleet_testbed.processes import free_port
from phonefleet_testbed.waiting import wait_until
from phonefleet_worker.cli import main, settings_from_options
from phonefleet_worker.settings import WorkerSettings
from phonefleet_worker.worker import run_worker

OPTIONS = [
    "--phone-id",
    "--adb-secret-dir",
    "--appium-url",
    "--adb-server",
    "--probe-port",
    "--system-port",
    "--log-level",
    "--task",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PHONEFLEET_WORKER_ variable from the machine leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("PHONEFLEET_WORKER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("argv", [[], ["--phone-id", ""], ["--phone-id", "   "]])
def test_a_missing_or_empty_phone_id_exits_2_naming_the_flag(argv: list[str]) -> None:
    """Without a phone id the worker refuses to start: exit code 2 and the flag in the message."""
    result = CliRunner().invoke(main, argv)

    assert result.exit_code == 2
    assert "Missing option '--phone-id'" in result.output


def test_help_lists_every_option_with_its_environment_variable() -> None:
    """--help works and documents each option and where else it can come from."""
    result = CliRunner().invoke(main, ["--help"])

    assert result.exit_code == 0
    for option in OPTIONS:
        assert option in result.output
    assert "PHONEFLEET_WORKER_APPIUM_URL" in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--phone-id", PHONE_ID, "--adb-server", "no-port"], "adb_server"),
        (["--phone-id", PHONE_ID, "--task", "post"], "Invalid value for '--task'"),
        (["--phone-id", PHONE_ID, "--probe-port", "70000"], "70000 is not in the range"),
    ],
    ids=["adb-server", "task", "probe-port"],
)
def test_invalid_option_values_exit_2(argv: list[str], message: str) -> None:
    """Bad values are usage errors, reported before anything starts."""
    result = CliRunner().invoke(main, argv)

    assert result.exit_code == 2
    assert message in result.output


def test_options_become_settings_and_defaults_fill_the_rest() -> None:
    """Given options are taken as given; the others keep the documented defaults."""
    settings = settings_from_options(
        {"phone_id": PHONE_ID, "log_level": "debug", "system_port": 8201, "appium_url": None}
    )

    assert settings.phone_id == PHONE_ID
    assert settings.log_level == "DEBUG"
    assert settings.system_port == 8201
    assert settings.appium_url == "http://127.0.0.1:4723"
    assert (settings.adb_server_host, settings.adb_server_port) == ("127.0.0.1", 5037)
    assert settings.probe_port == 8080
    assert settings.task == "heartbeat"


def test_the_environment_sets_what_the_command_line_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PHONEFLEET_WORKER_* variables are read, and an option given on the command line wins."""
    monkeypatch.setenv("PHONEFLEET_WORKER_PHONE_ID", PHONE_ID)
    monkeypatch.setenv("PHONEFLEET_WORKER_APPIUM_URL", "http://127.0.0.1:4999")
    monkeypatch.setenv("PHONEFLEET_WORKER_ADB_SERVER", "127.0.0.1:5038")

    settings = settings_from_options({"adb_server": "127.0.0.1:5039"})

    assert settings.phone_id == PHONE_ID
    assert settings.appium_url == "http://127.0.0.1:4999"
    assert settings.adb_server_port == 5039


def test_extra_capabilities_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PHONEFLEET_WORKER_APPIUM_CAPABILITIES holds a JSON object of capabilities."""
    monkeypatch.setenv(
        "PHONEFLEET_WORKER_APPIUM_CAPABILITIES", '{"platformName": "Fake", "appium:udid": null}'
    )

    settings = settings_from_options({"phone_id": PHONE_ID})

    assert settings.appium_capabilities == {"platformName": "Fake", "appium:udid": None}


@pytest.mark.parametrize("phone_id", ["", "  "])
def test_the_run_function_refuses_to_run_without_a_phone_id(phone_id: str) -> None:
    """run_worker() raises ValueError rather than drive some phone."""
    with pytest.raises(ValueError, match="a phone id is required"):
        run_worker(WorkerSettings(phone_id=phone_id))


def probe(port: int, path: str) -> int:
    """The status code of a probe, 0 while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def test_the_installed_command_waits_for_its_phone_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    """The real process serves its probes while waiting for data and stops cleanly on SIGTERM."""
    probe_port = free_port()
    env = {
        **os.environ,
        "PHONEFLEET_WORKER_PROBE_HOST": "127.0.0.1",
        "PHONEFLEET_WORKER_ADB_SERVER": f"127.0.0.1:{free_port()}",
    }
    command = [
        str(Path(sys.executable).with_name("phonefleet-worker")),
        "--phone-id",
        PHONE_ID,
        "--adb-secret-dir",
        str(tmp_path / "not-mounted-yet"),
        "--probe-port",
        str(probe_port),
        "--job-port",
        str(free_port()),
    ]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as worker:
        try:
            wait_until(lambda: probe(probe_port, "/livez") == 200, timeout=30, what="/livez")
            assert probe(probe_port, "/readyz") == 503

            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()

    assert worker.returncode == 0, stderr
    assert f"waiting for connection data in {tmp_path / 'not-mounted-yet'}" in stderr
    assert f"Moved phone {PHONE_ID} from WAITING_FOR_PHONE to STOPPED: received SIGTERM" in stderr
