"""The ``phonefleet`` command line: a local test bed now, GitOps helpers later."""

from __future__ import annotations

import click

from phonefleet_operator.cli.dev import dev

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="phonefleet")
def cli() -> None:
    """Run Geelark cloud phones from Kubernetes: one PhoneBinding, one phone, one worker pod."""


cli.add_command(dev)
