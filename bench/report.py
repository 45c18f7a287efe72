"""The bench's output: a table for people, and a JSON file with every figure, machine, versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.kube import WRITE_VERBS, writes_in
from phonefleet_operator.geelark.pace import BURST_CALLS, BURST_SECONDS, WINDOW_SECONDS
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["machine_info", "table", "targets", "write_json"]

Obj = dict[str, Any]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(binaries_dir: Path) -> Obj:
    """Where and with what the bench ran."""
    dirty = _git("status", "--porcelain")
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpuModel": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpusUsable": len(os.sched_getaffinity(0)),
        "memoryMiB": _memory_mib(),
        "loadAverageAtStart": list(os.getloadavg()),
        "python": platform.python_version(),
        "versions": {
            "phonefleet": _version("phonefleet"),
            "kopf": _version("kopf"),
            "kubernetes (Python client)": _version("kubernetes"),
            "aiohttp": _version("aiohttp"),
            "pydantic": _version("pydantic"),
            "controlPlane": binaries_dir.name,
        },
        "git": {
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(dirty) if dirty is not None else None,
        },
    }


#: The calls each phone needs at the floor, one of each.
FLOOR_ENDPOINTS = ("phone/list", "phone/start", "phone/status", "adb/setStatus", "adb/getData")
#: Phones per call in the issue's floor (fixed: 100 ids per call), and with Geelark's documented
#: batch sizes: ``phone/start`` takes 200; list pages and status calls 100; the two ADB calls
#: state no limit, and the operator sends them 100 (docs/scale.md, round 6b).
ISSUE_BATCH: dict[str, int] = dict.fromkeys(FLOOR_ENDPOINTS, 100)
DOCUMENTED_BATCH: dict[str, int] = {**ISSUE_BATCH, "phone/start": 200}


#: The operator's setting of its own pace, and its default (what production runs with).
PACE_VARIABLE = "PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE"
DEFAULT_PACE: int = GeelarkSettings.model_fields["requests_per_minute"].default


def pace_seconds(calls: int, per_minute: int) -> float:
    """The least time ``calls`` calls take at the operator's pace (``geelark/pace.py``): at most
    ``per_minute`` in any 60 s, :data:`BURST_CALLS` a second (the calls' latency left out)."""
    if calls <= 0:
        return 0.0
    windows, within = divmod(calls - 1, per_minute)
    return windows * WINDOW_SECONDS + within // min(BURST_CALLS, per_minute) * BURST_SECONDS


def _floor_calls(n: int, batch: Mapping[str, int]) -> dict[str, int]:
    return {endpoint: -(-n // batch[endpoint]) for endpoint in FLOOR_ENDPOINTS}


def geelark_floor(n: int, options: Obj, operator_env: Mapping[str, str] | None = None) -> Obj:
    """The least time Geelark's limits allow to bring ``n`` phones up, as the simulator is set.

    Each phone needs, in batches of 100 ids (the issue's model): its listing page, a start, a
    status after the boot, ADB switched on and its data fetched (5 calls per 100 phones). Two
    bounds, the floor is the larger: the calls at the account's rate (``rateLimitPerMinute``),
    and one phone's own path (its calls' latency, the boot and the ADB delay), which no budget
    can shorten. ``documented`` is the same floor with Geelark's documented batch sizes (200
    phones per start call); targets are judged against the issue's.

    The operator keeps to a pace of its own (``PHONEFLEET_GEELARK_REQUESTS_PER_MINUTE``, below
    the account's rate by default): ``pace`` says which it ran with and whether it is the
    default, ``paceSeconds`` how long the floor's calls take at that pace.
    """
    by_endpoint = _floor_calls(n, ISSUE_BATCH)
    calls = sum(by_endpoint.values())
    rate = options["rateLimitPerMinute"]
    budget = calls * 60.0 / rate
    path = options["bootSeconds"] + options["adbEnableSeconds"] + 5 * options["latencyMs"] / 1000
    configured = (operator_env or {}).get(PACE_VARIABLE)
    pace = int(configured) if configured else DEFAULT_PACE
    documented = _floor_calls(n, DOCUMENTED_BATCH)
    documented_budget = sum(documented.values()) * 60.0 / rate
    return {
        "calls": calls,
        "callsByEndpoint": by_endpoint,
        "budgetSeconds": round(budget, 1),
        "pathSeconds": round(path, 1),
        "seconds": round(max(budget, path), 1),
        "pace": {"callsPerMinute": pace, "default": pace == DEFAULT_PACE},
        "paceSeconds": round(max(pace_seconds(calls, pace), path), 1),
        "documented": {
            "idsPerCall": DOCUMENTED_BATCH,
            "calls": sum(documented.values()),
            "callsByEndpoint": documented,
            "budgetSeconds": round(documented_budget, 1),
            "seconds": round(max(documented_budget, path), 1),
        },
    }


#: Above this many bindings the issue's N = 5,000 targets apply (RSS, Geelark's floor), not the
#: N = 1,000 ones that count calls and seconds for that size.
LARGE_FLEET = 1000


def targets(n: int, operator: Obj, ceiling: Obj, floor: Obj | None = None) -> list[Obj]:
    """The issue's targets, each with its measured value: the N = 1,000 set (calls, seconds and
    the ceiling stated for that size) up to ``LARGE_FLEET`` bindings, the N = 5,000 set (RSS
    under 600 MiB, within 1.5x of Geelark's floor) above it; both share the rest."""
    conv = operator["geelarkConvergence"]
    ceiling_seconds = ceiling.get("convergeSeconds") or 0.0
    rows: list[tuple[str, Any, str, float]] = [
        ("40007 answers (whole run)", operator["rateLimited40007"], "==", 0),
        (
            "steady API requests per binding per minute",
            operator.get("steadyRequestsPerBindingMinute", {}).get("total"),
            "<=",
            0.05,
        ),
        ("bindings converged", operator["converged"], "==", n),
    ]
    if n > LARGE_FLEET:
        return _judged(
            [
                ("operator peak RSS MiB", operator["peakRssMiB"], "<", 600),
                ("convergence / Geelark floor", (floor or {}).get("ratio"), "<=", 1.5),
                *rows,
            ]
        )
    return _judged(
        [
            ("list calls during convergence", conv["byEndpoint"].get("phone/list", 0), "<=", 12),
            ("Geelark calls during convergence", conv["total"], "<=", 100),
            ("most Geelark calls in any 60 s", operator["maxCallsPerMinute"], "<=", 150),
            ("steady-state Geelark calls per minute", operator["steadyCallsPerMinute"], "<", 30),
            ("convergence seconds", operator["convergeSeconds"], "<", 90),
            (
                "convergence / ceiling",
                round(operator["convergeSeconds"] / ceiling_seconds, 2)
                if ceiling_seconds
                else None,
                "<=",
                3,
            ),
            ("operator peak RSS MiB", operator["peakRssMiB"], "<", 300),
            *rows,
        ]
    )


def _judged(rows: list[tuple[str, Any, str, float]]) -> list[Obj]:
    result = []
    for name, value, op, limit in rows:
        met = None
        if value is not None:
            met = {
                "<=": value <= limit,
                "<": value < limit,
                "==": value == limit,
            }[op]
        result.append({"target": name, "value": value, "limit": f"{op} {limit}", "met": met})
    return result


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(result: Obj) -> str:
    """One table: operator, ceiling, the seed's way; then the targets."""
    op = result["operator"]
    ce = result["ceiling"]
    seed = result["seedWay"] or {
        "projected": {
            "exact": True,
            "secondsAt200PerMinute": None,
            "listCalls": None,
            "maxCallsPerMinuteUnthrottled": None,
        },
        "measured": {"assignments": 0, "secondsPerAssignment": {}},
    }
    n = result["bindings"]
    header = (
        "| | converge s | bindings/s | create->pod p50 / p95 / p99 s | list calls | Geelark calls"
        " | max calls/60 s | 40007 | steady calls/min | peak RSS MiB | CPU s |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

    def lat(block: Obj) -> str:
        return " / ".join(_fmt(block.get(k), 2) for k in ("p50", "p95", "p99"))

    conv = op["geelarkConvergence"]
    rows = [
        "| operator | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            _fmt(op["convergeSeconds"]),
            _fmt(op["bindingsPerSecond"]),
            lat(op["latencySeconds"]),
            conv["byEndpoint"].get("phone/list", 0),
            conv["total"],
            op["maxCallsPerMinute"],
            op["rateLimited40007"],
            _fmt(op["steadyCallsPerMinute"]),
            _fmt(op["peakRssMiB"]),
            _fmt(op["cpuSecondsConvergence"]),
        ),
        "| ceiling (plain client, no operator, no Geelark) | {} | {} | {} |{}".format(
            _fmt(ce["convergeSeconds"]),
            _fmt(ce["converged"] / ce["convergeSeconds"] if ce.get("convergeSeconds") else None),
            lat(ce.get("latencySeconds", {})),
            " - |" * 7,
        ),
    ]
    projected = seed["projected"]
    measured = seed["measured"]
    label = "measured" if projected["exact"] else f"projected from {measured['assignments']}"
    rows.append(
        "| seed's way (validation only; {}) | {} | {} | {} | {} | {} | {} | - | - | - | - |".format(
            label,
            _fmt(projected["secondsAt200PerMinute"]),
            _fmt(
                n / projected["secondsAt200PerMinute"]
                if projected["secondsAt200PerMinute"]
                else None,
                2,
            ),
            " / ".join(
                _fmt(measured["secondsPerAssignment"].get(k), 2) for k in ("p50", "p95", "p99")
            ),
            projected["listCalls"],
            projected["listCalls"],
            projected["maxCallsPerMinuteUnthrottled"],
        )
    )
    lines = [
        f"N = {n}",
        header,
        rule,
        *rows,
        "",
        "| target | value | limit | met |",
        "|---|---:|---|---|",
    ]
    for row in result["targets"]:
        met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(f"| {row['target']} | {_fmt(row['value'], 3)} | {row['limit']} | {met} |")
    steady = op.get("steadyRequestsPerBindingMinute") or {}
    floor = result.get("geelarkFloor") or {}
    cpu = op["cpuSecondsConvergence"] / n if n else 0.0
    lines += [
        "",
        "steady API requests per binding per minute, by verb: "
        + (
            ", ".join(
                f"{verb} {value:.4f}" for verb, value in steady.items() if verb != "failedWrites"
            )
            or "-"
        )
        + f"; failed writes {steady.get('failedWrites', '-')}",
        _floor_line(floor) + f"; CPU {cpu:.4f} s per binding",
        _passes_line(op.get("reconcilePassesConvergence") or {}, n),
        _writes_line(op.get("apiRequestsConvergence") or {}, n)
        + f" (with the Events posted up to {_fmt(op.get('eventsTrailingSeconds'))} s after)",
        _api_side_line(op, ce, n),
        *pipeline_lines(op.get("podPipeline") or {}),
        _pace_line(floor),
        "Geelark side (every phone's ADB data read, i.e. every pod created) done at "
        f"{_fmt(floor.get('geelarkDoneSeconds'))} s: {_fmt(floor.get('geelarkDoneRatio'), 2)}x "
        "the floor; calls by endpoint (floor): "
        + ", ".join(
            f"{endpoint} {conv['byEndpoint'].get(endpoint, 0)} "
            f"({(floor.get('callsByEndpoint') or {}).get(endpoint, '-')})"
            for endpoint in sorted({*conv["byEndpoint"], *FLOOR_ENDPOINTS})
        ),
        "phones per batch call (Geelark takes 100; start 200): "
        + (
            ", ".join(
                f"{endpoint} {ids / conv['byEndpoint'][endpoint]:.1f}"
                for endpoint, ids in (conv.get("idsByEndpoint") or {}).items()
                if conv["byEndpoint"].get(endpoint)
            )
            or "-"
        ),
        _call_spans_line(op.get("geelarkCalls") or []),
    ]
    return "\n".join(lines)


def _floor_line(floor: Obj) -> str:
    """Geelark's floor as the issue defines it (the target's), and with Geelark's documented
    batch sizes."""
    documented = floor.get("documented") or {}
    sizes = documented.get("idsPerCall") or {}
    larger = ", ".join(f"{k} {v}" for k, v in sizes.items() if v != ISSUE_BATCH.get(k)) or "-"
    return (
        f"Geelark floor {floor.get('seconds', '-')} s (the issue's: 100 ids per call, "
        f"{floor.get('calls', '-')} calls; budget {floor.get('budgetSeconds', '-')} s, one "
        f"phone's path {floor.get('pathSeconds', '-')} s): operator at "
        f"{_fmt(floor.get('ratio'), 2)}x (the target's); with Geelark's documented batch sizes "
        f"({larger} ids per call, {documented.get('calls', '-')} calls): "
        f"{documented.get('seconds', '-')} s, operator at {_fmt(documented.get('ratio'), 2)}x"
    )


def _api_side_line(op: Obj, ceiling: Obj, n: int) -> str:
    """The API server's write rate: the operator's run's (all of it, and from the last ADB read,
    from the timeline's samples), the ceiling's, and the least time the ceiling's rate allows
    for the run's writes."""
    writes = writes_in(op.get("apiRequestsConvergence") or {})
    seconds = op.get("convergeSeconds") or 0.0
    if not writes or not seconds or not n:
        return "API side: -"
    text = (
        f"API side: {writes} writes in {seconds:.1f} s of convergence, "
        f"{writes / seconds:.0f} writes/s"
    )
    last_read = ((op.get("podPipeline") or {}).get("lastSeconds") or {}).get("adbRead")
    samples = [(row["t"], row["apiWrites"]) for row in op.get("timeline", []) if "apiWrites" in row]
    before = [s for s in samples if last_read is not None and s[0] <= last_read]
    after = [s for s in samples if s[0] <= seconds]
    if before and after and after[-1][0] > before[-1][0]:
        (t0, w0), (t1, w1) = before[-1], after[-1]
        text += f" ({(w1 - w0) / (t1 - t0):.0f}/s from {t0:.0f} s, the last ADB read's sample)"
    ceiling_writes, ceiling_seconds = ceiling.get("apiWrites"), ceiling.get("convergeSeconds")
    if ceiling_writes and ceiling_seconds:
        rate = ceiling_writes / ceiling_seconds
        text += (
            f"; ceiling {ceiling_writes} writes in {ceiling_seconds:.1f} s, {rate:.0f}/s: at "
            f"that rate the run's {writes / n:.2f} writes per binding take at least "
            f"{writes / rate:.1f} s"
        )
    else:
        text += "; ceiling not run"
    return text


def pipeline_lines(pipeline: Obj) -> list[str]:
    """The pod pipeline (bench.pipeline): each step's p50 / p95 / max, the last time each
    milestone was reached, and how many bindings were in each step every 10 s."""
    steps = pipeline.get("steps") or {}
    if not steps:
        return ["pod pipeline: -"]
    lines = [
        "pod pipeline, p50 / p95 / max s (bindings): "
        + "; ".join(
            f"{_STEP_LABELS.get(name, name)} ({step['by']}) "
            + " / ".join(_fmt(step.get(k), 2) for k in ("p50", "p95", "max"))
            + f" ({step['bindings']})"
            for name, step in steps.items()
        ),
        "last reached, s: "
        + ", ".join(
            f"{_MILESTONE_LABELS.get(name, name)} {_fmt(t)}"
            for name, t in (pipeline.get("lastSeconds") or {}).items()
        ),
    ]
    stages = pipeline.get("stages") or []
    shown, next_at = [], 0.0
    for row in stages:
        if row["t"] >= next_at:
            shown.append(row)
            next_at = (row["t"] // 10 + 1) * 10
    if stages and shown[-1] is not stages[-1]:
        shown.append(stages[-1])
    lines.append(
        "bindings by step (read, no pod / pod, unscheduled / scheduled, not Running / Running, "
        "binding not Ready / Ready): "
        + ", ".join(
            f"{row['t']:.0f} s {row['adbRead']}/{row['podCreated']}/{row['scheduled']}/"
            f"{row['running']}/{row['ready']}"
            for row in shown
        )
    )
    return lines


_STEP_LABELS = {
    "adbReadToPod": "ADB read -> pod created",
    "podToScheduled": "pod -> scheduled",
    "scheduledToRunning": "scheduled -> Running",
    "runningToReady": "Running -> binding Ready",
}
_MILESTONE_LABELS = {
    "adbRead": "ADB read",
    "podCreated": "pod created",
    "scheduled": "pod scheduled",
    "running": "pod Running",
    "ready": "binding Ready",
}


def _writes(requests: Mapping[str, int]) -> dict[str, int]:
    return {
        kind: count
        for kind, count in requests.items()
        if kind.split()[0] in WRITE_VERBS and kind != "PUT leases"
    }


def _call_spans_line(calls: list[list[Any]]) -> str:
    """When each endpoint was called, from the simulator's log: first..last call, seconds after
    the apply began (where the Geelark step chain spends its time)."""
    spans: dict[str, list[float]] = {}
    for at, endpoint, _ in calls:
        spans.setdefault(endpoint, []).append(at)
    return "Geelark calls served, first..last s after the apply: " + (
        ", ".join(
            f"{endpoint} {min(times):.1f}..{max(times):.1f}"
            for endpoint, times in sorted(spans.items(), key=lambda kv: min(kv[1]))
        )
        or "-"
    )


def _passes_line(passes: dict[str, float], n: int) -> str:
    """Reconcile passes until convergence (the operator's own counter): the work that grows
    with the time a fleet takes, as each Running binding's periodic pass does."""
    if not passes or not n:
        return "reconcile passes to converge: -"
    total = sum(passes.values())
    return (
        f"reconcile passes to converge: {total:.0f}, {total / n:.2f} per binding "
        f"(failed {passes.get('error', 0):.0f})"
    )


def _writes_line(requests: dict[str, int], n: int) -> str:
    """Writes per binding while converging, by verb and resource, as the API server counted
    them: every client's (the scheduler's Events and pod bindings, KWOK's pod status too)."""
    writes = _writes(requests)
    if not writes or not n:
        return "API writes per binding to converge: -"
    by_kind = ", ".join(
        f"{kind} {count / n:.2f}" for kind, count in sorted(writes.items(), key=lambda kv: -kv[1])
    )
    total = sum(writes.values()) / n
    return f"API writes per binding to converge (all clients): {total:.2f}: {by_kind}"


def _pace_line(floor: Obj) -> str:
    pace = floor.get("pace") or {}
    if not pace:
        return "operator's Geelark pace: -"
    how = (
        "the default"
        if pace["default"]
        else f"{PACE_VARIABLE} set for this run; the default is {DEFAULT_PACE}"
    )
    return (
        f"operator's Geelark pace: {pace['callsPerMinute']} calls/min ({how}); the floor's calls "
        f"at that pace take {floor.get('paceSeconds', '-')} s"
    )


def write_json(result: Obj, out: Path | None) -> Path:
    """Write the figures to ``out`` or ``bench/results/<timestamp>-N<n>.json``."""
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = RESULTS_DIR / f"{stamp}-N{result['bindings']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out
