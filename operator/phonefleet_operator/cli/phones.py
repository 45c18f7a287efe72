"""``phonefleet phones``: the Geelark phones of the account, and which binding holds each."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import click
from pydantic import ValidationError

from phonefleet_operator.cli.billing import DEFAULT_STATE_FILE, billing_report, stop
from phonefleet_operator.cli.exit_codes import ERROR
from phonefleet_operator.cli.geelark_access import (
    MISSING_CREDENTIALS,
    load_geelark_settings,
    open_inventory,
)
from phonefleet_operator.cli.kubeconfig import unusable_kubeconfig
from phonefleet_operator.constants import DEFAULT_ACCOUNT
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark import Phone
from phonefleet_operator.geelark import PhoneStatus as Power
from phonefleet_operator.k8s import ApiCaller, KubeGateway, load_api_client
from phonefleet_operator.models import Holder, PhoneClaim, PhonePool, PhoneStatus
from phonefleet_operator.services.tenancy.listing import pool_of, read_pools
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["holders_by_phone", "phone_records", "phone_rows", "phones", "render_table"]

#: The power states as a binding's status.phone.status spells them.
_STATUS_TEXT: Final[Mapping[Power, str]] = {
    Power.RUNNING: PhoneStatus.RUNNING,
    Power.STARTING: PhoneStatus.STARTING,
    Power.SHUT_DOWN: PhoneStatus.STOPPED,
    Power.EXPIRED: PhoneStatus.EXPIRED,
}
#: HELD BY when no binding holds the phone, and when the cluster could not be asked.
NOT_HELD: Final = "<none>"
UNKNOWN: Final = "-"
_HEADERS: Final[tuple[str, ...]] = ("ID", "SERIAL NAME", "STATUS", "HELD BY")


@click.group()
def phones() -> None:
    """The Geelark phones of the account (credentials from PHONEFLEET_GEELARK_*)."""


@phones.command(name="list")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the cluster whose PhoneClaims say who holds a phone "
    "[default: $KUBECONFIG, else ~/.kube/config; inside a pod always its service account].",
)
@click.option(
    "--billing",
    is_flag=True,
    help="Only phones Geelark bills that no live PhoneBinding holds, with how long each has "
    "been seen so; exit 1 when there are any, 2 when it cannot tell (cron, CI).",
)
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE_FILE,
    show_default=True,
    help="With --billing: where the first sighting of each such phone is kept between runs.",
)
@click.option(
    "--account",
    envvar="PHONEFLEET_ACCOUNT",
    default=DEFAULT_ACCOUNT,
    show_default=True,
    help="The account's name, as its operator's PHONEFLEET_ACCOUNT: POOL shows its PhonePools "
    "only (docs/tenancy.md).",
)
def list_phones(
    output: str, kubeconfig: str | None, billing: bool, state_file: Path, account: str
) -> None:
    """List every phone: id, serial name, status, and the binding that holds it.

    The phones come from one paged Geelark listing. HELD BY is the namespace/name of the
    PhoneBinding whose PhoneClaim holds the phone, <none> when none does, and - when the cluster
    could not be asked (the reason goes to standard error).

    Exit codes: 0 done: listed; 2 error: Geelark could not be read, or a usage or settings
    error (no credentials). With --billing: 0 done: no such phone; 1 problems: some (listed);
    2 error: it cannot tell (Geelark or the cluster could not be read).
    """
    if billing:
        sys.exit(billing_report(kubeconfig, output, state_file))
    settings = load_geelark_settings()
    if settings is None:
        raise click.UsageError(MISSING_CREDENTIALS)
    try:
        found, claims, pools = asyncio.run(_gather(settings, kubeconfig, account))
    except PhonefleetError as error:
        click.echo(f"Failed to list phones with Geelark: {error}", err=True)
        sys.exit(ERROR)
    holders = None if isinstance(claims, str) else claims
    if isinstance(claims, str):
        click.echo(f"HELD BY is unknown: could not read the PhoneClaims: {claims}", err=True)
    records, headers = phone_records(found, holders), _HEADERS
    rows: list[tuple[str, ...]] = phone_rows(found, holders)
    if pools is not None:  # tenancy is on: each phone's PhonePool (docs/tenancy.md)
        names = [pool_of(phone, pools) for phone in found]
        for record, pool in zip(records["phones"], names, strict=True):
            record["pool"] = pool
        rows = [(*row, pool) for row, pool in zip(rows, names, strict=True)]
        headers = (*headers, "POOL")
    if output == "json":
        click.echo(json.dumps(records, indent=2))
    else:
        click.echo(render_table([headers, *rows]))


phones.add_command(stop)


async def _gather(
    settings: GeelarkSettings, kubeconfig: str | None, account: str
) -> tuple[list[Phone], dict[str, Holder] | str, list[PhonePool] | None]:
    async with open_inventory(settings) as inventory:
        _, claims, pools = await asyncio.gather(
            inventory.refresh(), _read_claims(kubeconfig), read_pools(kubeconfig, account)
        )
        listed = sorted(inventory.cached().values(), key=lambda p: (p.serial_name, p.id))
    return listed, claims, pools


async def _read_claims(kubeconfig: str | None) -> dict[str, Holder] | str:
    """Holders by phone id, or why they could not be read (HELD BY is optional: never fatal)."""
    try:
        caller = ApiCaller(load_api_client(1, kubeconfig), 1)
    except Exception as error:  # kubernetes' config errors: the column is optional, so say why
        return unusable_kubeconfig(kubeconfig, error)
    try:
        return holders_by_phone(await KubeGateway(caller).list_claims())
    except Exception as error:  # 404 (no CRDs), 403, unreachable: the column is optional
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    finally:
        caller.close()


def holders_by_phone(claims: Iterable[Mapping[str, Any]]) -> dict[str, Holder]:
    """The holder of each claimed phone, by canonical phone id; malformed claims are skipped."""
    holders: dict[str, Holder] = {}
    for body in claims:
        try:
            claim = PhoneClaim.from_body(body)
        except ValidationError:
            continue
        holders[claim.spec.phone_id] = claim.spec.holder
    return holders


def _held_by(phone: Phone, holders: Mapping[str, Holder] | None) -> str:
    if holders is None:
        return UNKNOWN
    holder = holders.get(phone.id)
    return holder.namespaced_name if holder else NOT_HELD


def phone_rows(
    found: Sequence[Phone], holders: Mapping[str, Holder] | None
) -> list[tuple[str, ...]]:
    """One table row per phone: id, serial name, status, held by."""
    return [
        (
            phone.id,
            phone.serial_name or UNKNOWN,
            _STATUS_TEXT.get(phone.status, PhoneStatus.UNKNOWN),
            _held_by(phone, holders),
        )
        for phone in found
    ]


def phone_records(found: Sequence[Phone], holders: Mapping[str, Holder] | None) -> dict[str, Any]:
    """The JSON output: each phone with its holder (null when free); whether holders are known."""
    return {
        "heldByKnown": holders is not None,
        "phones": [
            {
                "id": phone.id,
                "serialName": phone.serial_name,
                "status": _STATUS_TEXT.get(phone.status, PhoneStatus.UNKNOWN),
                "heldBy": (
                    holders[phone.id].to_dict() if holders and phone.id in holders else None
                ),
            }
            for phone in found
        ],
    }


def render_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as kubectl prints them: left-aligned columns three spaces apart, no trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
