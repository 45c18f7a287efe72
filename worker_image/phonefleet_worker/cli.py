"""The ``phonefleet-worker`` command line: options and environment -> settings -> the worker.

Each option can also come from the environment (``--appium-url`` from
``PHONEFLEET_WORKER_APPIUM_URL``, and so on); an option given on the command line wins.
Exit codes: 0 stopped on SIGTERM, 1 failed (another phone, adb missing), 2 bad usage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from phonefleet_worker.settings import ENV_PREFIX, WorkerSettings
from phonefleet_worker.tasks import TASKS

__all__ = ["main", "settings_from_options"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def described(text: str, field: str) -> str:
    """An option's help: ``text``, the settings default and the environment variable."""
    default = WorkerSettings.model_fields[field].default
    return f"{text} [default: {default}; env: {env_of(field)}]"


def env_of(field: str) -> str:
    """The environment variable that sets ``field``."""
    return ENV_PREFIX + field.upper()


def settings_from_options(
    options: dict[str, Any], ctx: click.Context | None = None
) -> WorkerSettings:
    """Merge the options given on the command line over the environment and the defaults.

    Raises click.UsageError (exit code 2) for invalid values and for a missing phone id.
    """
    given = {name: value for name, value in options.items() if value is not None}
    if isinstance(given.get("log_level"), str):
        given["log_level"] = given["log_level"].upper()
    try:
        settings = WorkerSettings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise click.UsageError(f"Invalid settings: {problems}", ctx=ctx) from None
    if not settings.phone_id:
        raise click.UsageError(
            f"Missing option '--phone-id' (or {env_of('phone_id')}): "
            "a worker drives only the phone it is given.",
            ctx=ctx,
        )
    return settings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--phone-id",
    help=f"The Geelark phone id to drive, and no other. [required; env: {env_of('phone_id')}]",
)
@click.option(
    "--adb-secret-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=described(
        "Directory of the mounted Secret with the files ip, port, password and phoneId.",
        "adb_secret_dir",
    ),
)
@click.option("--appium-url", help=described("The Appium server.", "appium_url"))
@click.option(
    "--adb-server",
    metavar="HOST:PORT",
    help=described("The adb server, shared with the Appium sidecar.", "adb_server"),
)
@click.option(
    "--probe-port",
    type=click.IntRange(0, 65535),
    help=described("Port of the /readyz and /livez endpoint.", "probe_port"),
)
@click.option(
    "--job-port",
    type=click.IntRange(0, 65535),
    help=described("Port of the job endpoint (the operator delivers PhoneJobs).", "job_port"),
)
@click.option(
    "--system-port",
    type=click.IntRange(1024, 65535),
    help=described(
        "UiAutomator2's systemPort (unique per Appium server on a host).", "system_port"
    ),
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help=described("The lowest level that is logged.", "log_level"),
)
@click.option(
    "--task",
    type=click.Choice(sorted(TASKS)),
    help=described("The task run while the phone is idle.", "task"),
)
@click.pass_context
def main(ctx: click.Context, /, **options: Any) -> None:
    """Drive one Geelark cloud phone through adb and an Appium session.

    Every option can also be set from the environment: PHONEFLEET_WORKER_ and the option's name
    in upper case with underscores (PHONEFLEET_WORKER_PHONE_ID, ...).
    """
    settings = settings_from_options(options, ctx)
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)

    from phonefleet_worker.media import hide_query_strings  # noqa: PLC0415 (keeps --help fast)
    from phonefleet_worker.worker import run_worker  # noqa: PLC0415

    hide_query_strings()  # media URLs may be presigned: their signature is no log's business

    ctx.exit(run_worker(settings))
