"""Child processes of the test bed: started with their logs in files, waited for until they
serve, stopped for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from phonefleet_testbed.waiting import StopWaiting, wait_for

__all__ = ["ManagedProcess", "ProcessExited", "ProcessGroup", "free_port"]

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProcessExited(StopWaiting, RuntimeError):
    """A child exited while something waited for it: every wait whose check asks
    :meth:`ManagedProcess.check_running` ends with this at once, not at its deadline."""

    def __init__(self, name: str, returncode: int, log_tail: str) -> None:
        super().__init__(f"{name} exited with code {returncode}; last log lines:\n{log_tail}")
        self.name = name
        self.returncode = returncode
        self.log_tail = log_tail


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
        """Raise ProcessExited, with the exit code and the tail of the log, if the child has
        exited: a wait that calls this in its check then ends at once."""
        if self._process is not None and self._process.poll() is not None:
            raise ProcessExited(self.name, self._process.returncode, self.log_tail())

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


class ProcessGroup:
    """The children of one part of the test bed (a control plane, a node): each started with
    its log in ``log_dir`` and waited for until it serves, all stopped newest first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        #: Seconds each :meth:`step` took, by its name.
        self.startup_seconds: dict[str, float] = {}
        self._processes: list[ManagedProcess] = []

    def __iter__(self) -> Iterator[ManagedProcess]:
        """The children, oldest first."""
        return iter(list(self._processes))

    def __getitem__(self, name: str) -> ManagedProcess:
        """The child called ``name``."""
        for process in self._processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def start(
        self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """Start ``argv`` as ``name``; its output goes to ``<log_dir>/<name>.log``."""
        process = ManagedProcess(name, argv, self.log_dir, env=env)
        process.start()
        self._processes.append(process)
        return process

    def wait_ready(
        self,
        ready: Callable[[], object],
        timeout: float,
        *,
        message: str,
        interval: float = 0.1,
        watching: Sequence[ManagedProcess] | None = None,
    ) -> None:
        """Until ``ready()`` is true, at most ``timeout`` seconds. Each try first checks that
        the children ``watching`` (default: all) still run: once one has exited the wait
        ends at once with ProcessExited (its exit code and last log lines)."""

        def serves() -> object:
            for process in self._processes if watching is None else watching:
                process.check_running()
            return ready()

        wait_for(serves, timeout, interval=interval, message=message)

    def step(self, name: str, start: Callable[[float], None], timeout: float) -> None:
        """Run one start-up step (``start(timeout)``) and record how long it took."""
        began = time.monotonic()
        start(timeout)
        self.startup_seconds[name] = time.monotonic() - began

    def log_tails(self, lines: int = 15) -> list[str]:
        """Each child's name and last log lines, for the notes of a failed start."""
        return [f"--- {p.name} log ---\n{p.log_tail(lines)}" for p in self._processes]

    def stop(self) -> None:
        """Stop every child, newest first."""
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
