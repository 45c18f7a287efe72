"""PNG plots of one bench result, written beside its JSON (matplotlib: the ``bench`` extra).

* ``<stem>-ready.png``: bindings Ready over time, the operator against the ceiling;
* ``<stem>-geelark.png``: Geelark calls per 10 s during convergence, against Geelark's limit of
  200 a minute and the operator's own budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["calls_per_window", "ceiling_curve", "write_plots"]

Obj = dict[str, Any]

WINDOW_SECONDS: Final = 10.0
GEELARK_LIMIT_PER_MINUTE: Final = 200
OPERATOR_BUDGET_PER_MINUTE: Final = 125


def calls_per_window(timeline: Sequence[Obj], window: float = WINDOW_SECONDS) -> list[int]:
    """Geelark calls in each ``window`` seconds, from the timeline's cumulative counts (sampled
    about every second; a call counts in the window of the first sample that includes it)."""
    if not timeline:
        return []

    def total_at(t: float) -> int:
        seen = [s["geelarkCalls"] for s in timeline if s["t"] <= t]
        return int(seen[-1]) if seen else 0

    windows = int(timeline[-1]["t"] // window) + 1
    return [total_at((k + 1) * window) - total_at(k * window) for k in range(windows)]


def ceiling_curve(ceiling: Obj, total: int) -> tuple[list[float], list[int]]:
    """(seconds, pods running) of the ceiling: every pod if the result has them, else the
    milestones (results written before ``convergedAtSeconds`` existed)."""
    times = ceiling.get("convergedAtSeconds")
    if times:
        return [0.0, *times], list(range(len(times) + 1))
    points = [(0.0, 0)]
    shares = {"first": 1 / total, "p50": 0.5, "p90": 0.9, "all": 1.0}
    for label, share in shares.items():
        seconds = (ceiling.get("milestones") or {}).get(label)
        if seconds is not None:
            points.append((seconds, max(1, round(share * total))))
    return [p[0] for p in points], [p[1] for p in points]


def write_plots(result: Obj, json_path: Path) -> list[Path]:
    """Write both plots next to ``json_path``; return their paths."""
    import matplotlib  # noqa: PLC0415 - the bench extra, loaded only when plotting

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    n = result["bindings"]
    operator = result["operator"]
    timeline = operator.get("timeline") or []
    stem = json_path.with_suffix("")
    written = []

    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.step(
        [s["t"] for s in timeline],
        [s["converged"] for s in timeline],
        where="post",
        label=f"operator ({operator['convergeSeconds']} s)",
    )
    ceiling = result.get("ceiling") or {}
    if not ceiling.get("skipped") and ceiling.get("convergeSeconds") is not None:
        xs, ys = ceiling_curve(ceiling, n)
        axes.step(
            xs, ys, where="post", label=f"ceiling, no operator ({ceiling['convergeSeconds']} s)"
        )
    axes.set_xlabel("seconds after the bindings were applied")
    axes.set_ylabel("bindings Ready (pod Running)")
    axes.set_title(f"Bindings Ready over time, N = {n}")
    axes.set_ylim(0, n * 1.05)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    ready = Path(f"{stem}-ready.png")
    figure.savefig(ready, dpi=100)
    plt.close(figure)
    written.append(ready)

    counts = calls_per_window(timeline)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.bar(
        [i * WINDOW_SECONDS for i in range(len(counts))],
        counts,
        width=WINDOW_SECONDS * 0.9,
        align="edge",
        label="Geelark calls per 10 s",
    )
    # The pace the operator ran with (results before it was recorded: the default then, 125).
    pace = ((result.get("geelarkFloor") or {}).get("pace") or {}).get("callsPerMinute")
    for per_minute, style, what in (
        (GEELARK_LIMIT_PER_MINUTE, "--", "Geelark's limit"),
        (pace or OPERATOR_BUDGET_PER_MINUTE, ":", "operator's pace"),
    ):
        per_window = per_minute * WINDOW_SECONDS / 60
        axes.axhline(
            per_window,
            linestyle=style,
            color="red" if per_minute == 200 else "gray",
            label=f"{what}: {per_minute}/min = {per_window:.1f} per 10 s",
        )
    axes.set_xlabel("seconds after the bindings were applied")
    axes.set_ylabel("calls")
    converged = operator.get("convergeSeconds")
    if converged is not None:
        axes.axvline(converged, color="green", linewidth=1, label=f"all Ready ({converged} s)")
    axes.set_title(
        f"Geelark calls per 10 s, N = {n} "
        f"({operator['geelarkConvergence']['total']} until all were Ready)"
    )
    axes.set_ylim(0, max([*counts, GEELARK_LIMIT_PER_MINUTE * WINDOW_SECONDS / 60]) * 1.5)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(loc="upper right")
    figure.tight_layout()
    geelark = Path(f"{stem}-geelark.png")
    figure.savefig(geelark, dpi=100)
    plt.close(figure)
    written.append(geelark)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.plots RESULT.json...``: (re)draw the plots of saved results."""
    import json  # noqa: PLC0415
    import sys  # noqa: PLC0415

    for name in argv if argv is not None else sys.argv[1:]:
        path = Path(name)
        result = json.loads(path.read_text())
        counts = calls_per_window(result["operator"].get("timeline") or [])
        written = ", ".join(str(p) for p in write_plots(result, path))
        print(f"Geelark calls per 10 s: {', '.join(map(str, counts))}; wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
