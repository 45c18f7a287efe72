"""``python -m bench --bindings N``: run the bench, print the table and write the JSON."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.decorators import FC

from bench.jobs import drained_cleanly, jobs_table, run_jobs
from bench.plots import write_plots
from bench.report import RESULTS_DIR, table, write_json
from bench.runner import Options, run


def _env_pairs(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.startswith("PHONEFLEET_"):
            raise click.BadParameter(f"expected PHONEFLEET_NAME=value, got {value!r}")
        pairs[name] = setting
    return pairs


def _shown(*names: str, **settings: Any) -> Callable[[FC], FC]:
    """``click.option`` with its default shown in ``--help``."""
    return click.option(*names, show_default=True, **settings)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@_shown("--bindings", "-n", default=100, help="PhoneBindings (and phones).")
@_shown("--boot-seconds", default=10.0, help="Simulated phone boot time.")
@_shown(
    "--adb-enable-seconds",
    default=3.0,
    help="Simulated delay before enabled ADB is usable (Geelark: about 3 s).",
)
@_shown("--latency-ms", default=100.0, help="Latency of each Geelark call.")
@_shown(
    "--rate-limit-per-minute",
    default=200,
    help="The simulator's account budget (Geelark: 200).",
)
@_shown(
    "--steady-seconds",
    default=300.0,
    help="Window at rest after convergence: Geelark calls and API requests per binding per "
    "minute (issue 14 averages over 5 minutes; the periodic recheck is 60 s).",
)
@_shown("--timeout", default=600.0, help="Give up converging after this.")
@_shown("--apply-concurrency", default=32, help="Parallel binding creates.")
@_shown("--ceiling-concurrency", default=64, help="Requests in flight, ceiling.")
@_shown(
    "--seed-sample",
    default=10,
    help="Assignments the seed's way validates for real; the rest is projected.",
)
@click.option(
    "--operator-env",
    multiple=True,
    callback=_env_pairs,
    help="PHONEFLEET_NAME=value for the operator (experiments; default: production settings).",
)
@click.option(
    "--skip",
    type=click.Choice(["ceiling", "seed"]),
    multiple=True,
    help="Leave a reference out (quicker iterations).",
)
@_shown(
    "--churn-cycles",
    default=2,
    help="Times every binding is deleted and applied again after the steady state (RSS after).",
)
@_shown(
    "--churn-bindings",
    default=0,
    help="Bindings each churn cycle deletes and applies again (0: all); the others keep running "
    "and their pods are checked for replacements and restarts.",
)
@_shown(
    "--jobs-per-binding",
    default=5,
    help="Then drain N x this many PhoneJobs on a control plane of their own (bench.jobs; 0: no).",
)
@_shown(
    "--apiserver-profile",
    "apiserver_profile_seconds",
    default=0,
    help="Seconds of kube-apiserver CPU profile from the operator's first apply "
    "(<out>-apiserver.pprof; 0: off, the API server's profiling stays off).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON file to write.")
def main(
    *,
    operator_env: dict[str, str],
    skip: tuple[str, ...],
    jobs_per_binding: int,
    out: Path | None,
    **settings: Any,
) -> None:
    """Converge N PhoneBindings with the operator; compare with the ceiling and the seed's way."""
    if settings["apiserver_profile_seconds"]:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        named = out or RESULTS_DIR / f"{stamp}-N{settings['bindings']}.json"
        settings["apiserver_profile_path"] = named.with_name(f"{named.stem}-apiserver.pprof")
    options = Options(operator_env=operator_env, skip=frozenset(skip), **settings)
    result = run(options)
    if jobs_per_binding:
        result["jobs"] = run_jobs(options.bindings, jobs_per_binding, options.timeout + 300)
    path = write_json(result, out)
    plots = write_plots(result, path)
    jobs = "\n\n" + jobs_table(result["jobs"]) if jobs_per_binding else ""
    click.echo(
        "\n" + table(result) + jobs + f"\n\nWrote {path}, " + ", ".join(p.name for p in plots)
    )
    converged = result["operator"]["converged"] == options.bindings
    sys.exit(0 if converged and (not jobs_per_binding or drained_cleanly(result["jobs"])) else 1)


if __name__ == "__main__":
    main()
