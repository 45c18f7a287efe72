"""Child processes of the test bed: started with their logs in files, stopped for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ManagedProcess", "free_port"]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # A crashed test run must not leave an apiserver behind that holds ports and memory.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One long-running child whose output goes to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the child; its output is appended to the log file."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self._env or {})},
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads touch state in the child
            )

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self._process is not None and self._process.poll() is None

    def check_running(self) -> None:
        """Raise with the tail of the log if the child has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with code {self._process.returncode}; "
                f"last log lines:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the child's log, for error messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to stop (SIGTERM), kill it if it takes longer than ``timeout``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
