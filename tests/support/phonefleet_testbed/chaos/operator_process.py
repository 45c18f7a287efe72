"""The operator under test as production runs it: the ``phonefleet-operator`` console script.

It runs as a child process configured only by ``PHONEFLEET_*`` variables, so the chaos test can
SIGKILL it (no shutdown handler runs, as when a node dies) and start a fresh one.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import requests

from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.waiting import wait_for

__all__ = ["OperatorProcess"]


class OperatorProcess:
    """One operator at a time; its output from every start goes to one log file."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self._env = env
        self._log_dir = log_dir
        self._process: ManagedProcess | None = None
        self._liveness = ""
        self.starts = 0

    @property
    def log_path(self) -> Path:
        """Where the operator's output goes."""
        return self._log_dir / "phonefleet-operator.log"

    def start(self) -> None:
        """Start the console script (a new liveness port each time); one at a time."""
        if self.is_running():
            raise RuntimeError("an operator is running already: two would race each other")
        script = Path(sys.executable).parent / "phonefleet-operator"
        self._liveness = f"http://127.0.0.1:{free_port()}/healthz"
        self._process = ManagedProcess(
            "phonefleet-operator",
            [str(script), "--liveness", self._liveness],
            self._log_dir,
            env=self._env,
        )
        self._process.start()
        self.starts += 1

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Return once kopf answers its liveness probe; fail at once if the process died."""

        def healthy() -> bool:
            assert self._process is not None
            self._process.check_running()
            return requests.get(self._liveness, timeout=2).status_code == 200

        wait_for(healthy, timeout, interval=0.2, message="phonefleet-operator to answer /healthz")

    def is_healthy(self) -> bool:
        """Whether the operator answers its liveness probe now."""
        try:
            return self.is_running() and requests.get(self._liveness, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def is_running(self) -> bool:
        """Whether the operator process is alive."""
        return self._process is not None and self._process.is_running()

    def check_running(self) -> None:
        """Raise with the log's tail if the operator exited on its own."""
        if self._process is not None:
            self._process.check_running()

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no final status write, connections cut."""
        process = self._process
        if process is None or process.pid is None or not process.is_running():
            return
        os.kill(process.pid, signal.SIGKILL)
        wait_for(lambda: not process.is_running(), 30, message="the operator to die")

    def stop(self) -> None:
        """SIGTERM and wait (the orderly end of a run)."""
        if self._process is not None:
            self._process.stop(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, for failure messages."""
        return self._process.log_tail(lines) if self._process else ""
