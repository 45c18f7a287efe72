"""Specifications of the test bed's readiness waits: a wait for a process that has exited ends
at once with that process's exit code and the tail of its log, never at its deadline.

Each wait below has a deadline of 600 s, twice pytest's own timeout: a wait that ran it out
would fail the test by timing out, so no test measures time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from phonefleet_testbed.chaos.operator_process import OperatorProcess
from phonefleet_testbed.processes import ProcessExited, ProcessGroup
from phonefleet_testbed.waiting import StopWaiting, WaitTimeout, wait_for

NEVER = 600.0  # seconds: longer than the test may run (pytest timeout 300 s)


def test_a_stop_waiting_from_the_check_ends_the_wait_with_it() -> None:
    """The check says what it waits for can never come: the error is raised from the first
    call, where any other error would count as "not yet"."""
    calls = []

    def check() -> bool:
        calls.append(1)
        raise StopWaiting("the server is gone")

    with pytest.raises(StopWaiting, match="the server is gone"):
        wait_for(check, NEVER, message="a server that is gone")
    assert len(calls) == 1


def test_other_errors_of_the_check_still_mean_not_yet() -> None:
    """A probe that fails while its server starts is retried, and the last error is chained
    to the timeout."""
    answers = iter([ConnectionError("refused"), ConnectionError("refused"), True])

    def check() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(check, NEVER, interval=0.01, message="a starting server") is True
    with pytest.raises(WaitTimeout) as raised:
        wait_for(lambda: 1 / 0, 0.05, interval=0.01, message="a broken probe")
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_a_readiness_wait_ends_when_the_process_exits(tmp_path: Path) -> None:
    """A child that prints a line and exits with code 3 while the group waits for it to
    serve: the wait raises ProcessExited naming the child, its code and its last log line."""
    group = ProcessGroup(tmp_path)
    script = "print('bad flag --etcd-servers', flush=True); raise SystemExit(3)"
    crasher = group.start("crasher", [sys.executable, "-c", script])
    try:
        with pytest.raises(ProcessExited) as raised:
            group.wait_ready(lambda: False, NEVER, message="crasher to serve")
    finally:
        group.stop()

    assert raised.value.name == crasher.name
    assert raised.value.returncode == 3
    assert "bad flag --etcd-servers" in raised.value.log_tail
    assert "crasher exited with code 3" in str(raised.value)


def test_a_wait_watching_one_child_ignores_the_others_exit(tmp_path: Path) -> None:
    """``watching`` names the children that matter: another one's exit does not end the wait
    (the control plane restarts a kube-scheduler that exited), the watched one's does."""
    group = ProcessGroup(tmp_path)
    group.start("quitter", [sys.executable, "-c", "raise SystemExit(1)"])
    server = group.start("server", [sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        wait_for(lambda: not group["quitter"].is_running(), NEVER, message="quitter to exit")
        group.wait_ready(lambda: True, NEVER, message="server to serve", watching=[server])
        with pytest.raises(ProcessExited, match="quitter exited with code 1"):
            group.wait_ready(lambda: False, NEVER, message="everything to serve")
    finally:
        group.stop()


def test_the_operator_wait_ends_when_the_operator_exits(tmp_path: Path) -> None:
    """The real ``phonefleet-operator`` refuses a setting and exits with code 2: waiting for
    its liveness probe ends at once with that code and the operator's own words."""
    operator = OperatorProcess({"PHONEFLEET_GEELARK_BATCH_WINDOW_SECONDS": "soon"}, tmp_path)
    operator.start()
    try:
        with pytest.raises(ProcessExited) as raised:
            operator.wait_healthy(NEVER)
    finally:
        operator.stop()

    assert raised.value.returncode == 2
    assert "PHONEFLEET_GEELARK_BATCH_WINDOW_SECONDS" in raised.value.log_tail
