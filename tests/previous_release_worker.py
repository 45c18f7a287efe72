"""The job endpoint of the previous release's worker (main at f90bf98, before job leases), run
from git for the tests that check a new operator against it.

    python tests/previous_release_worker.py TOKEN_FILE [--autorun]

It extracts ``worker_image/phonefleet_worker`` at that commit (``git archive``) into a temporary
folder, imports that package (not the checkout's), serves its job server and desk with its
built-in tasks on a free loopback port, and prints the port. Then each line ``run`` on stdin
lets its session run the delivered attempt (with a stand-in Appium driver for the heartbeat
task) and prints ``ran`` (or ``nothing to run``); with ``--autorun`` a thread does that for each
attempt as soon as it is queued. End of stdin stops it. Without the commit (a shallow clone) it
exits 1 and says so: the tests then fail with that message.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

COMMIT = "f90bf98"
REPO = Path(__file__).resolve().parents[1]


class Driver:
    """What the heartbeat task reads through Appium."""

    def get_window_size(self) -> dict[str, int]:
        return {"width": 720, "height": 1280}


def extract(into: Path) -> Path:
    """The previous release's worker package under ``into``; exits 1 without the commit."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", COMMIT, "worker_image/phonefleet_worker"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        sys.exit(
            f"commit {COMMIT} (the previous release, whose worker this runs) is not in the clone "
            f"at {REPO}: run the tests in a full clone (git fetch --unshallow)"
        )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "worker_image"


def main(token_file: Path, autorun: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="previous-worker-") as folder:
        source = extract(Path(folder))
        sys.path.insert(0, str(source))
        # Imported here, after the path: the previous release's package, not the checkout's.
        import phonefleet_worker  # noqa: PLC0415
        from phonefleet_worker.job_desk import JobDesk  # noqa: PLC0415
        from phonefleet_worker.job_server import JobServer, token_from_file  # noqa: PLC0415
        from phonefleet_worker.registry import TaskRegistry  # noqa: PLC0415
        from phonefleet_worker.tasks import Device, TaskContext  # noqa: PLC0415

        where = Path(phonefleet_worker.__file__).resolve()
        if not where.is_relative_to(source.resolve()):
            sys.exit(f"imported phonefleet_worker from {where}, not from {source}")
        desk = JobDesk(TaskRegistry.from_entry_points())
        lock = threading.Lock()

        def run_one() -> bool:
            with lock:
                task: Any = desk.next_job(time.time())
                if task is None:
                    return False
                driver: Any = Driver()
                context = TaskContext(driver, Device("phone", "serial"), threading.Event())
                desk.report(task.run(context), time.time())
                return True

        done = threading.Event()

        def autorunner() -> None:
            while not done.wait(0.1):
                run_one()

        server = JobServer(host="127.0.0.1", port=0, desk=desk, token=token_from_file(token_file))
        server.start()
        if autorun:
            threading.Thread(target=autorunner, daemon=True).start()
        print(server.port, flush=True)
        for _ in sys.stdin:
            print("ran" if run_one() else "nothing to run", flush=True)
        done.set()
        server.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--autorun" in sys.argv[2:])
