"""The worker's settings: one pydantic-settings class, loaded once by the CLI and passed down.

Every field can be set from the environment with the ``PHONEFLEET_WORKER_`` prefix
(``PHONEFLEET_WORKER_PHONE_ID``, ``PHONEFLEET_WORKER_APPIUM_URL``, ...); command-line options win
over the environment. Nothing else in the worker reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from phonefleet_worker.tasks import TASKS

__all__ = ["ENV_PREFIX", "LogLevel", "WorkerSettings", "split_adb_server"]

ENV_PREFIX = "PHONEFLEET_WORKER_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class WorkerSettings(BaseSettings):
    """How one worker reaches its phone, its Appium server and its probes."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    phone_id: str = ""
    """The canonical Geelark phone id this worker drives, and no other (required)."""

    adb_secret_dir: Path = Path("/var/run/phonefleet/adb")
    """The mounted Secret with the ADB connection data: files ip, port, password, phoneId."""

    appium_url: str = "http://127.0.0.1:4723"
    """The Appium server (the pod's sidecar)."""

    adb_server: str = "127.0.0.1:5037"
    """The adb server as host:port, shared with the Appium sidecar."""

    adb_path: str = "adb"
    """The adb binary, found on PATH unless a path is given."""

    probe_host: str = "0.0.0.0"  # noqa: S104 (the kubelet probes the pod's IP, not loopback)
    """The address the probe endpoint listens on."""

    probe_port: int = Field(default=8080, ge=0, le=65535)
    """The probe endpoint's port (0 picks a free one, for tests)."""

    job_port: int = Field(default=8090, ge=0, le=65535)
    """The job endpoint's port, where the operator delivers PhoneJobs (0 picks a free one)."""

    job_token_file: Path | None = None
    """The file holding the binding's job token; unset: ``jobToken`` in ``adb_secret_dir``."""

    job_linger_seconds: float = Field(default=10.0, ge=0)
    """On a stop, how long the job endpoint stays up after the session ended for the operator to
    read how the last attempt ended (within the pod's termination grace, 30 s by default): the
    operator then retries at once instead of waiting for the attempt's lease."""

    system_port: int = Field(default=8200, ge=1024, le=65535)
    """UiAutomator2's systemPort: unique per Appium server on a host."""

    appium_capabilities: dict[str, Any] = Field(default_factory=dict)
    """Capabilities merged over the UiAutomator2 defaults (JSON in the environment); a key set
    to null removes a default. Tests use it to point the worker at Appium's fake driver."""

    log_level: LogLevel = "INFO"
    """The lowest level that is logged."""

    task: str = "heartbeat"
    """The task run while the phone is idle (see ``tasks.TASKS``)."""

    task_interval: float = Field(default=30.0, gt=0)
    """Seconds between two runs of the idle task."""

    device_check_interval: float = Field(default=30.0, gt=0)
    """Seconds between two checks that the device is still there and still this phone."""

    secret_poll_interval: float = Field(default=5.0, gt=0)
    """Seconds between two reads of the connection data while waiting or idle."""

    adb_command_timeout: float = Field(default=30.0, gt=0)
    """Seconds one adb command may take."""

    adb_device_timeout: float = Field(default=60.0, gt=0)
    """Seconds a connected phone has to reach the adb state ``device``."""

    appium_ready_timeout: float = Field(default=120.0, gt=0)
    """Seconds the Appium server has to answer ``GET /status`` with ready."""

    appium_command_timeout: int = Field(default=600, gt=0)
    """Seconds one Appium HTTP call may take; creating a UiAutomator2 session can take minutes."""

    recovery_initial_delay: float = Field(default=2.0, ge=0)
    """Seconds to wait before the first recovery attempt; doubled after each failure."""

    recovery_max_delay: float = Field(default=60.0, gt=0)
    """The longest wait between two recovery attempts."""

    liveness_timeout: float = Field(default=90.0, gt=0)
    """Seconds without a turn of the main loop before ``/livez`` fails."""

    @field_validator("phone_id")
    @classmethod
    def _strip_phone_id(cls, value: str) -> str:
        return value.strip()

    @field_validator("task")
    @classmethod
    def _check_task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"unknown task {value!r}; known: {', '.join(sorted(TASKS))}")
        return value

    @field_validator("adb_server")
    @classmethod
    def _check_adb_server(cls, value: str) -> str:
        split_adb_server(value)
        return value

    @property
    def job_token_path(self) -> Path:
        """Where the job token is read from."""
        return self.job_token_file or self.adb_secret_dir / "jobToken"

    @property
    def adb_server_host(self) -> str:
        """The adb server's host."""
        return split_adb_server(self.adb_server)[0]

    @property
    def adb_server_port(self) -> int:
        """The adb server's port."""
        return split_adb_server(self.adb_server)[1]


def split_adb_server(value: str) -> tuple[str, int]:
    """Split ``host:port`` into its parts; raise ValueError when it is not that."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)
