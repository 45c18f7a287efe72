"""CPU seconds and resident memory of processes, read from /proc (Linux only).

The operator's peak RSS comes from the kernel's own high-water mark (``VmHWM``), so a spike
between two samples is not missed; a background thread also samples ``VmRSS`` for the curve.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CpuClock", "ProcessSampler", "child_processes", "cpu_seconds", "memory_kib"]

_TICKS = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/stat after "pid (comm) ": field 3 (state) is index 0, so utime (14) and stime (15)
# are indexes 11 and 12, and ppid (4) is index 1.
_UTIME = 11
_STIME = 12
_PPID = 1


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces: split after its closing one.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[_UTIME]) + int(fields[_STIME])) / _TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (now) and ``VmHWM`` (peak) of the process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def child_processes(parent: int | None = None) -> dict[str, int]:
    """Direct children of ``parent`` (default: this process) by command name."""
    parent = os.getpid() if parent is None else parent
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[_PPID])
        if ppid == parent:
            found[name] = int(entry.name)
    return found


@dataclass
class CpuClock:
    """CPU seconds of several processes between two moments (``start`` then ``read``)."""

    pids: dict[str, int]
    _started: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        """Remember every process's CPU time now."""
        self._started = {name: _safe_cpu(pid) for name, pid in self.pids.items()}

    def read(self) -> dict[str, float]:
        """CPU seconds each process used since ``start``."""
        return {
            name: round(_safe_cpu(pid) - self._started.get(name, 0.0), 2)
            for name, pid in self.pids.items()
        }


def _safe_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


class ProcessSampler:
    """Samples one process's RSS and CPU in a background thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, float]] = []
        """(monotonic time, RSS KiB, CPU seconds) per sample."""
        self.peak_hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Take one last sample and stop."""
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """Take one sample now (ignored once the process is gone)."""
        try:
            memory = memory_kib(self.pid)
            cpu = cpu_seconds(self.pid)
        except (OSError, ValueError):
            return
        self.peak_hwm_kib = max(self.peak_hwm_kib, memory.get("VmHWM", 0))
        self.samples.append((time.monotonic(), memory.get("VmRSS", 0), cpu))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
        self.sample()

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used between two monotonic times (nearest samples)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start]
        first = before[-1] if before else (inside[0] if inside else None)
        last = inside[-1] if inside else None
        if first is None or last is None:
            return 0.0
        return round(last[2] - first[2], 2)

    def peak_rss_between(self, start: float, end: float) -> int:
        """Largest sampled RSS (KiB) between two monotonic times."""
        return max((s[1] for s in self.samples if start <= s[0] <= end), default=0)
