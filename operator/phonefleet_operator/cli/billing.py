"""``phonefleet phones list --billing`` and ``phones stop``: phones billed that no binding runs.

The report is for cron and CI: exit 0 when every billed phone is run by a live binding (Bound
or Running), 1 when some are not (they are listed: nobody's, or held by a binding that does not
run its phone, such as a Suspended one, named in BINDING), 2 when it could not tell (Geelark or
the cluster unreachable); ``cli/exit_codes.py`` has the contract.
Geelark does not say since when a phone runs, so each run remembers in a small state file when
it first saw each phone billed unbound; RUNNING UNBOUND is measured from there (a lower bound).

Nothing here stops a phone unless a person names it to ``phones stop``; that command refuses a
phone a live binding holds (delete or suspend the binding instead).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click

from phonefleet_operator.cli.exit_codes import DONE, ERROR, PROBLEMS
from phonefleet_operator.cli.geelark_access import (
    MISSING_CREDENTIALS,
    load_geelark_settings,
    open_inventory,
)
from phonefleet_operator.cli.kubeconfig import unusable_kubeconfig
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.geelark import GeelarkClient, Phone
from phonefleet_operator.k8s import ApiCaller, KubeGateway, load_api_client
from phonefleet_operator.services.billing import (
    LeakTracker,
    UnboundPhone,
    held_phone_ids,
    holders,
    how_to_stop,
    unbound_running,
)
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["DEFAULT_STATE_FILE", "billing_report", "stop", "stop_phones", "unbound_for"]

#: Where first sightings are kept between runs (``~`` expanded when used).
DEFAULT_STATE_FILE: Final = "~/.cache/phonefleet/billing-seen.json"
_HEADERS: Final = ("ID", "SERIAL NAME", "STATUS", "RUNNING UNBOUND", "BINDING")
_STATUS: Final = {0: "Running", 1: "Starting"}


def unbound_for(seconds: float) -> str:
    """``>= 2h05m`` style: how long at least (seen since), ``new`` at the first sighting."""
    if seconds < 1:
        return "new"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f">= {days}d{hours:02d}h"
    if hours:
        return f">= {hours}h{minutes:02d}m"
    return f">= {minutes}m" if minutes else f">= {int(seconds)}s"


def billing_report(kubeconfig: str | None, output: str, state_file: Path) -> int:
    """List the phones billed with no live binding; return the exit code (0, 1 or 2)."""
    settings = _settings()
    state_file = state_file.expanduser()
    try:
        phones, bindings, claims = asyncio.run(_gather(settings, kubeconfig))
    except PhonefleetError as error:
        click.echo(f"Could not check billing: Geelark could not be asked: {error}", err=True)
        return ERROR
    except _ClusterUnreadable as error:
        click.echo(f"Could not check billing: the cluster could not be read: {error}", err=True)
        return ERROR
    tracker = LeakTracker(_load(state_file))
    found = tracker.update(unbound_running(phones, held_phone_ids(bindings, claims)), time.time())
    _save(state_file, tracker.first_seen)
    held = holders(bindings, claims)
    if output == "json":
        click.echo(json.dumps(_records(found, tracker.first_seen, held), indent=2))
    elif not found:
        click.echo("No phone is billed without a binding.")
    else:
        rows = [_HEADERS, *(_row(f, held) for f in found)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
        for row in rows:
            click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        click.echo(
            f"\n{len(found)} phone(s) billed by Geelark that no PhoneBinding runs "
            "(RUNNING UNBOUND counts from the first run of this check that saw it).\n"
            + _advice(found, held)
        )
    return PROBLEMS if found else DONE


def _advice(found: Sequence[UnboundPhone], held: Mapping[str, str]) -> str:
    """How to stop the listed phones: nobody's by hand, a binding's by that binding."""
    loose = [f.phone.id for f in found if f.phone.id not in held]
    kept = [f"{f.phone.id} by {held[f.phone.id]}" for f in found if f.phone.id in held]
    lines = [how_to_stop(loose)] if loose else []
    if kept:
        lines.append(
            "Held by a binding that does not run it (it stops the phone itself, or says why "
            "not in kubectl describe pb): " + "; ".join(kept) + "."
        )
    return "\n".join(lines)


def stop_phones(ids: Sequence[str], kubeconfig: str | None) -> int:
    """Stop the named phones unless a live binding holds one; return the exit code."""
    settings = _settings()
    try:
        _, bindings, claims = asyncio.run(_gather(settings, kubeconfig, list_phones=False))
    except (PhonefleetError, _ClusterUnreadable) as error:
        click.echo(f"Refused: could not check who holds these phones: {error}", err=True)
        return ERROR
    held = (held_phone_ids(bindings, claims) | set(holders(bindings, claims))) & set(ids)
    if held:
        click.echo(
            f"Refused: a live PhoneBinding holds {', '.join(sorted(held))}; delete or suspend "
            "the binding instead (it stops the phone once its worker is gone).",
            err=True,
        )
        return PROBLEMS  # a refusal on purpose, not a question left open
    try:
        result = asyncio.run(_stop(settings, ids))
    except PhonefleetError as error:
        click.echo(f"Failed to stop phones: {error}", err=True)
        return ERROR  # Geelark could not be asked: stopping again is safe
    for phone_id in ids:
        failure = result.get(phone_id)
        click.echo(
            f"Stopped {phone_id}" if failure is None else f"Not stopped {phone_id}: {failure}"
        )
    return DONE if all(v is None for v in result.values()) else PROBLEMS


class _ClusterUnreadable(Exception):
    """Bindings or claims could not be read: nobody can tell which phones are held."""


def _settings() -> GeelarkSettings:
    settings = load_geelark_settings()
    if settings is None:
        raise click.UsageError(MISSING_CREDENTIALS)
    return settings


async def _gather(
    settings: GeelarkSettings, kubeconfig: str | None, *, list_phones: bool = True
) -> tuple[list[Phone], list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        caller = ApiCaller(load_api_client(2, kubeconfig), 2)
    except Exception as error:  # kubernetes' config errors: say why, never guess "unheld"
        raise _ClusterUnreadable(unusable_kubeconfig(kubeconfig, error)) from None
    try:
        kube = KubeGateway(caller)
        try:
            bindings, claims = await asyncio.gather(kube.list_bindings(), kube.list_claims())
        except Exception as error:  # 403, 404 (no CRDs), unreachable
            raise _ClusterUnreadable(str(error).splitlines()[0] or type(error).__name__) from None
    finally:
        caller.close()
    if not list_phones:
        return [], bindings, claims
    async with open_inventory(settings) as inventory:
        await inventory.refresh()
        phones = list(inventory.cached().values())
    return phones, bindings, claims


async def _stop(settings: GeelarkSettings, ids: Sequence[str]) -> dict[str, str | None]:
    outcome: dict[str, str | None] = {}
    async with GeelarkClient(settings) as client:
        for start in range(0, len(ids), 100):
            result = await client.stop_phones(ids[start : start + 100])
            outcome.update(dict.fromkeys(result.succeeded))
            outcome.update({i: f"code {f.code} {f.msg}" for i, f in result.failed.items()})
    return outcome


def _row(found: UnboundPhone, held: Mapping[str, str]) -> tuple[str, str, str, str, str]:
    phone = found.phone
    return (
        phone.id,
        phone.serial_name or "-",
        _STATUS.get(int(phone.status), str(phone.status)),
        unbound_for(found.seen_for_seconds),
        held.get(phone.id, "-"),
    )


def _records(
    found: Sequence[UnboundPhone], first_seen: Mapping[str, float], held: Mapping[str, str]
) -> dict[str, Any]:
    loose = [f.phone.id for f in found if f.phone.id not in held]
    return {
        "phones": [
            {
                "id": f.phone.id,
                "serialName": f.phone.serial_name,
                "status": _STATUS.get(int(f.phone.status), str(f.phone.status)),
                "firstSeenUnbound": datetime.fromtimestamp(first_seen[f.phone.id], UTC)
                .isoformat()
                .replace("+00:00", "Z"),
                "unboundSeconds": round(f.seen_for_seconds),
                "binding": held.get(f.phone.id),
            }
            for f in found
        ],
        "howToStop": how_to_stop(loose) if loose else None,
    }


def _load(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def _save(path: Path, first_seen: Mapping[str, float]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(first_seen), indent=2, sort_keys=True))
    except OSError as error:  # a read-only home in a CI job: the report still stands
        click.echo(f"Could not remember first sightings in {path}: {error}", err=True)


@click.command(name="stop")
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the cluster whose bindings and PhoneClaims say who holds a phone.",
)
def stop(ids: tuple[str, ...], kubeconfig: str | None) -> None:
    """Stop these Geelark phones (ids), e.g. those `phones list --billing` reports.

    Refuses when a live PhoneBinding holds any of them: delete or suspend that binding instead.

    Exit codes: 0 done: every phone stopped; 1 problems: nothing stopped because a live
    binding holds one (refused), or Geelark did not stop one (each is named); 2 error: who holds
    them could not be read, or Geelark could not be reached (stopping again is safe), or a usage
    error.
    """
    sys.exit(stop_phones(list(dict.fromkeys(ids)), kubeconfig))
