"""``phonefleet dev``: the embedded default, a local control plane plus the Geelark simulator.

It runs the test bed (``phonefleet_testbed``), which is not part of the wheel: it lives in a
phonefleet checkout and builds the control plane from its ``hack/`` scripts. From an installed
wheel these commands say so and exit 2 (``cli/exit_codes.py``: nothing could be done).
"""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from types import FrameType, ModuleType

import click

from phonefleet_operator.cli.exit_codes import ERROR

__all__ = ["NEEDS_CHECKOUT", "dev"]

NEEDS_CHECKOUT = (
    "phonefleet dev needs a phonefleet checkout: the test bed it runs (the Geelark simulator and "
    "a local control plane built from hack/) is not installed with the wheel. Clone the "
    "repository and run `make demo` there (it installs the test bed with `pip install -e "
    "tests/support`)."
)


def _test_bed(module: str) -> ModuleType:
    """A module of the test bed, or a clean exit when this is not a checkout's environment."""
    try:
        binaries = importlib.import_module("phonefleet_testbed.binaries")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("phonefleet_testbed"):
            raise
        click.echo(NEEDS_CHECKOUT, err=True)
        sys.exit(ERROR)
    try:
        binaries.repo_root()  # the control plane is built from the checkout's hack/ scripts
    except RuntimeError:
        click.echo(NEEDS_CHECKOUT, err=True)
        sys.exit(ERROR)
    return importlib.import_module(f"phonefleet_testbed.{module}")


_STATE_DIR = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path.home() / ".cache" / "phonefleet" / "dev",
    show_default=True,
    envvar="PHONEFLEET_DEV_STATE_DIR",
    help="Where `dev up` writes the environment that `dev env` prints.",
)


@click.group()
def dev() -> None:
    """A local control plane and Geelark simulator for trying phonefleet out (loopback only)."""


@dev.command()
@click.option(
    "--phones",
    default=5,
    show_default=True,
    help="Phones the simulator seeds: phone-001, phone-002, ...",
)
@click.option(
    "--boot-seconds",
    default=3.0,
    show_default=True,
    help="How long a simulated phone takes to start.",
)
@click.option(
    "--samples/--no-samples",
    default=True,
    show_default=True,
    help="Add the phones manifests/samples name (after phone-001 ... in the id order).",
)
@click.option("--real-node", is_flag=True, help="Add a real node (root); else KWOK only.")
@_STATE_DIR
def up(phones: int, boot_seconds: float, samples: bool, real_node: bool, state_dir: Path) -> None:
    """Run the control plane and the simulator in the foreground until Ctrl+C.

    The simulator has the phones phone-001, phone-002, ... and (unless --no-samples) those
    manifests/samples name, so `kubectl apply -k manifests/samples` binds phones that exist.

    Exit codes: 0 done: stopped by Ctrl+C (or SIGTERM) and cleaned up; 2 error: not a
    phonefleet checkout.
    """
    node_devenv = _test_bed("node.devenv")
    devenv = _test_bed("devenv")
    stop = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    environment = node_devenv.dev_environment(
        real_node=real_node, echo=click.echo, phones=phones, boot_seconds=boot_seconds
    )
    with environment as env:
        sample_phones = devenv.add_sample_phones(env.simulator) if samples else []
        env_file = state_dir / "env"
        env.write_env_file(env_file)
        click.echo(
            f"Control plane and Geelark simulator are up (started in {env.startup_seconds:.1f} s)."
        )
        click.echo(env.describe())
        seeded = [f"phone-001 ... phone-{phones:03d}"] if phones else []
        if sample_phones:
            seeded.append(f"for manifests/samples: {', '.join(sample_phones)}")
        click.echo(f"  phones          {'; '.join(seeded) or 'none (add them: docs/tenancy.md)'}")
        if not real_node:
            click.echo(
                "Worker pods on the KWOK node run nothing and get no pod IP: a PhoneJob here "
                "waits (reason WorkerWithoutIP) and is sent nowhere. Jobs run on a real node: "
                "`make demo` (root), or `phonefleet dev up --real-node`."
            )
        click.echo(f"In another shell: eval $(phonefleet dev env)   [{env_file}]")
        click.echo("Press Ctrl+C to stop everything.")
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        while not stop:
            signal.pause()
        click.echo("Stopping ...")
    env_file.unlink(missing_ok=True)


@dev.command()
@_STATE_DIR
def env(state_dir: Path) -> None:
    """Print KUBECONFIG=... and PHONEFLEET_GEELARK_URL=... of a running ``phonefleet dev up``.

    Exit codes: 0 done: printed; 2 error: no `dev up` is running (with this --state-dir).
    """
    path = state_dir / "env"
    if not path.is_file():
        click.echo("No local environment is running: start one with `phonefleet dev up`.", err=True)
        sys.exit(ERROR)
    click.echo(path.read_text(), nl=False)


@dev.command()
@click.option("--keep", is_flag=True, help="Keep everything running until Ctrl+C after the demo.")
@click.option("--real-node", is_flag=True, help="Run the worker pods for real (root); else KWOK.")
def demo(keep: bool, real_node: bool) -> None:
    """Run the operator on the embedded default: bindings Running, in Conflict, PhoneNotFound.

    Exit codes: 0 done: every binding and PhoneJob ended as expected and no phone is left
    running; 1 problems: otherwise (the operator's last log lines are printed); 2 error: not a
    phonefleet checkout.
    """
    demo_module = _test_bed("demo")
    sys.exit(demo_module.run_demo(keep=keep, echo=click.echo, real_node=real_node))
