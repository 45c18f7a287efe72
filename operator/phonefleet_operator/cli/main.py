"""The ``phonefleet`` command line: GitOps helpers (bindings, phones) and a local test bed (dev)."""

from __future__ import annotations

import click

from phonefleet_operator.cli.bindings import bindings
from phonefleet_operator.cli.dev import dev
from phonefleet_operator.cli.exit_codes import CONTRACT
from phonefleet_operator.cli.jobs import jobs
from phonefleet_operator.cli.phones import phones
from phonefleet_operator.cli.pools import pools

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=CONTRACT)
@click.version_option(package_name="phonefleet")
def cli() -> None:
    """Run Geelark cloud phones from Kubernetes: one PhoneBinding, one phone, one worker pod."""


cli.add_command(bindings)
cli.add_command(phones)
cli.add_command(dev)
cli.add_command(jobs)
cli.add_command(pools)
