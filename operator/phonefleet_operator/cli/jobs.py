"""``phonefleet jobs import``: the script era's CSV ledger turned into PhoneJobs.

Each row's ``account`` is the serialName of a Geelark phone; the row goes to the PhoneBinding
whose resolved phone (``status.phone.serialName``) has that name. Rows the old ledger finished
(success, failed, skipped) are left out: importing them would post again. A row that cannot be
placed gets one line on standard error, and the command exits 1; the others are created
(names from ``job_id``, so importing twice creates nothing twice; a name that another job,
for other work, holds already is a problem of its row, never "existed already"). With
``--retry-failed`` a job of the same work that exists and has Failed (a task image missing, a
binding created since) is deleted and created again under its name, from its first attempt. A
cluster it cannot use (no kubeconfig, unreachable, refused, no PhoneJob CRD) exits 2.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click
from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.cli.exit_codes import ERROR, PROBLEMS
from phonefleet_operator.cli.kubeconfig import unusable_kubeconfig
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.k8s import ApiCaller, load_api_client
from phonefleet_operator.k8s.jobs import JobGateway

__all__ = ["ImportPlan", "failed_to_retry", "jobs", "plan_import"]

#: Statuses of the old ledger whose rows still have work to do.
_OPEN = frozenset({"", "pending", "retrying"})
#: Statuses whose work is finished: never imported (it would post twice).
_DONE = frozenset({"success", "failed", "skipped"})
_NAME = re.compile(r"[^a-z0-9-]+")
#: Phases of a binding that resolved its phone but does not hold it.
_NOT_HOLDING = frozenset({"Conflict", "Queued", "Forbidden"})


@dataclasses.dataclass
class ImportPlan:
    """The jobs to create and a line for each row that cannot be placed."""

    jobs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    finished: int = 0
    """Rows the old ledger had finished (left out)."""
    rows: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """Where each job comes from (``line N (job ID)``), by namespace and name."""
    failed: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    """With ``--retry-failed``: the uid of each planned job that exists, for the same work, and
    has Failed (deleted and created again), by namespace and name."""


def failed_to_retry(
    plan: ImportPlan, existing: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str], str]:
    """Of the ``existing`` jobs, those the plan would create again: the same work (binding, task,
    params) and phase Failed; their uids by namespace and name. A Succeeded job is never
    among them (its post was made), nor one still running or waiting."""
    planned = {(j["metadata"]["namespace"], j["metadata"]["name"]): j for j in plan.jobs}
    found = {}
    for there in existing:
        metadata = there.get("metadata") or {}
        key = (str(metadata.get("namespace", "")), str(metadata.get("name", "")))
        job = planned.get(key)
        failed = (there.get("status") or {}).get("phase") == "Failed"
        if job is not None and failed and _same_work(there, job):
            found[key] = str(metadata.get("uid", ""))
    return found


def job_name(job_id: str) -> str:
    """A PhoneJob name from the old job_id: lower case, dashes, at most 63 characters."""
    name = _NAME.sub("-", job_id.strip().lower()).strip("-")[:63].strip("-")
    return name or "job"


def plan_import(
    rows: Iterable[Mapping[str, str]],
    bindings: Sequence[Mapping[str, Any]],
    *,
    task: str,
) -> ImportPlan:
    """Place every open row on the binding of its account's phone."""
    by_serial: dict[str, list[Mapping[str, Any]]] = {}
    for binding in bindings:
        status = binding.get("status") or {}
        serial = (status.get("phone") or {}).get("serialName")
        # A binding in Conflict (Queued, Forbidden) resolved the phone but does not hold it:
        # its jobs would wait for ever, and it made the row look ambiguous beside the holder.
        if serial and status.get("phase") not in _NOT_HOLDING:
            by_serial.setdefault(serial, []).append(binding)
    plan = ImportPlan()
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"line {number} (job {row.get('job_id') or '?'})"
        status = (row.get("status") or "").strip().lower()
        if status in _DONE:
            plan.finished += 1
            continue
        if status not in _OPEN:
            plan.problems.append(
                f"{where}: status {status!r} in the old ledger (a worker may have posted it); "
                "check the account, then set it to pending to import it"
            )
            continue
        account = (row.get("account") or "").strip()
        if not row.get("job_id") or not account:
            plan.problems.append(f"{where}: job_id and account are required")
            continue
        found = by_serial.get(account, [])
        if not found:
            plan.problems.append(
                f"{where}: no PhoneBinding holds a phone with serialName {account!r}"
            )
            continue
        if len(found) > 1:
            names = ", ".join(
                f"{b['metadata']['namespace']}/{b['metadata']['name']}" for b in found
            )
            plan.problems.append(
                f"{where}: {len(found)} PhoneBindings hold a phone with serialName {account!r} "
                f"({names}): import with -n NAMESPACE"
            )
            continue
        try:
            job = _job(row, found[0], task)
        except ValueError as error:
            plan.problems.append(f"{where}: {error}")
            continue
        key = (job["metadata"]["namespace"], job["metadata"]["name"])
        if key in seen:
            plan.problems.append(f"{where}: job_id gives the name {key[1]!r} a second time")
            continue
        seen.add(key)
        plan.rows[key] = where
        plan.jobs.append(job)
    return plan


def _job(row: Mapping[str, str], binding: Mapping[str, Any], task: str) -> dict[str, Any]:
    attempts = _count(row.get("attempts"), "attempts", 0)
    most = _count(row.get("max_attempts"), "max_attempts", 3)
    spec: dict[str, Any] = {
        "bindingName": binding["metadata"]["name"],
        "task": task,
        "params": {"video": row.get("video_path", ""), "caption": row.get("caption", "")},
        "maxAttempts": max(1, min(20, most - attempts)),
    }
    retry_at = (row.get("retry_at") or "").strip()
    if retry_at:
        try:
            moment = datetime.fromisoformat(retry_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"retry_at {retry_at!r} is not an ISO 8601 time") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        spec["notBefore"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.JOB_KIND,
        "metadata": {
            "name": job_name(row["job_id"]),
            "namespace": binding["metadata"]["namespace"],
            "labels": {"phonefleet.dev/imported-from": "csv-ledger"},
        },
        "spec": spec,
    }


def _same_work(there: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """Whether the existing job ``there`` does the work of ``job``: the same binding, task and
    params (maxAttempts and notBefore follow the ledger's progress between two imports)."""
    have, want = there.get("spec") or {}, job["spec"]
    return all(have.get(key) == want.get(key) for key in ("bindingName", "task", "params"))


def _count(value: str | None, field: str, default: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a number") from None


@click.group()
def jobs() -> None:
    """PhoneJobs: the job ledger in Kubernetes."""


@jobs.command(name="import")
@click.argument("ledger", type=click.File("r", encoding="utf-8"))
@click.option("--namespace", "-n", help="Look for bindings in this namespace only.")
@click.option(
    "--task",
    default="post-video",
    show_default=True,
    help="The task of every imported job (params: video, caption).",
)
@click.option("--dry-run", is_flag=True, help="Print the jobs as JSON instead of creating them.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Delete the jobs of the same work that exist and have Failed, and create them again "
    "(from their first attempt).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig of the cluster [default: $KUBECONFIG, else ~/.kube/config].",
)
def import_ledger(  # noqa: PLR0917 - click passes each option as an argument
    ledger: TextIO,
    namespace: str | None,
    task: str,
    dry_run: bool,
    retry_failed: bool,
    kubeconfig: str | None,
) -> None:
    """Turn the old CSV ledger (job_id, account, video_path, caption, status, ...) into PhoneJobs.

    Each row goes to the PhoneBinding whose phone's serialName equals its account. One line is
    printed for each row that cannot be placed, and the exit code is then 1.

    A job that exists already is left alone, Failed ones included; --retry-failed deletes
    those of the same work that Failed and creates them again under their names.

    Exit codes: 0 done: every row imported (or already there); 1 problems: a row not placed
    (each is printed); 2 error: the cluster could not be used (importing again creates no job
    twice), or a usage error.
    """
    rows = list(csv.DictReader(ledger))
    source = Path(ledger.name).name
    options = _Options(namespace, task, dry_run, retry_failed, kubeconfig)
    try:
        created, existing, plan = asyncio.run(_run(rows, options))
    except _ImportStopped as stopped:
        done = (
            f"{stopped.created} jobs created, then stopped (importing again creates none twice)"
            if stopped.created
            else "nothing imported"
        )
        click.echo(f"{source}: {done}: {stopped.reason}", err=True)
        sys.exit(ERROR)
    if dry_run:
        click.echo(json.dumps(plan.jobs, indent=2))
    for problem in plan.problems:
        click.echo(f"{source}: {problem}", err=True)
    again = (
        f" ({len(plan.failed)} of them Failed already: deleted and created again)"
        if retry_failed
        else ""
    )
    made = (
        f"{len(plan.jobs)} jobs to create{again} (--dry-run: none created)"
        if dry_run
        else f"{created} jobs created{again}, {existing} existed already"
    )
    click.echo(
        f"{source}: {len(rows)} rows: {made}, {plan.finished} finished in the old ledger, "
        f"{len(plan.problems)} not placed",
        err=True,
    )
    if plan.problems:
        sys.exit(PROBLEMS)


@dataclasses.dataclass(frozen=True)
class _Options:
    namespace: str | None
    task: str
    dry_run: bool
    retry_failed: bool
    kubeconfig: str | None


#: How long a Failed job deleted by --retry-failed may take to go (its finalizer, released by
#: the operator once it finished, is normally gone already).
_GONE_SECONDS = 30.0


async def _run(rows: list[dict[str, str]], options: _Options) -> tuple[int, int, ImportPlan]:
    try:
        caller = ApiCaller(load_api_client(4, options.kubeconfig), 4)
    except Exception as error:  # kubernetes' config errors
        raise _ImportStopped(0, unusable_kubeconfig(options.kubeconfig, error)) from None
    created = 0
    try:
        gateway = JobGateway(caller)
        bindings = await gateway.list_bindings(options.namespace)
        plan = plan_import(rows, bindings, task=options.task)
        if options.retry_failed:
            namespaces = sorted({namespace for namespace, _ in plan.rows})
            listed = [job for ns in namespaces for job in await gateway.list_jobs(ns)]
            plan.failed = failed_to_retry(plan, listed)
        if options.dry_run:
            return 0, 0, plan
        existing = 0
        for job in plan.jobs:
            key = (job["metadata"]["namespace"], job["metadata"]["name"])
            if key in plan.failed:
                created += await _create_again(gateway, job, plan)
                continue
            if await gateway.create_job(job):
                created += 1
                continue
            # The name is taken. Names are lossy (lower case, dashes, 63 characters), so it may
            # be another row's job, or a job of someone else's: only the same job counts as
            # imported already; any other is this row's work left undone, and said so.
            key = (job["metadata"]["namespace"], job["metadata"]["name"])
            there = await gateway.get_job(*key)
            if there is None or _same_work(there, job):
                existing += 1
            else:
                plan.problems.append(
                    f"{plan.rows[key]}: PhoneJob {key[0]}/{key[1]} exists already for other "
                    "work (another binding, task or params): not imported; rename the job_id"
                )
        return created, existing, plan
    except PhonefleetError as error:  # unreachable, refused (RBAC)
        raise _ImportStopped(created, str(error)) from None
    except ApiException as error:  # 404: no PhoneJob CRD in this cluster; 409 passes through
        raise _ImportStopped(
            created, f"Kubernetes answered {error.status} {error.reason}"
        ) from None
    finally:
        caller.close()


async def _create_again(gateway: JobGateway, job: Mapping[str, Any], plan: ImportPlan) -> bool:
    """Delete the Failed job of ``job``'s name and create ``job`` once it has gone; False (a
    problem of its row) if it is still there after ``_GONE_SECONDS``."""
    key = (job["metadata"]["namespace"], job["metadata"]["name"])
    await gateway.delete_job(*key, plan.failed[key])
    deadline = time.monotonic() + _GONE_SECONDS
    while not await gateway.create_job(dict(job)):
        if time.monotonic() > deadline:
            plan.problems.append(
                f"{plan.rows[key]}: PhoneJob {key[0]}/{key[1]} Failed and was deleted, but had "
                f"not gone after {_GONE_SECONDS:.0f} s (is the operator running? it releases "
                "the job's finalizer): import again"
            )
            return False
        await asyncio.sleep(0.5)  # a deletion in progress: its finalizer is being released
    return True


class _ImportStopped(Exception):
    """The cluster could not be used: ``created`` jobs were created before, ``reason`` why."""

    def __init__(self, created: int, reason: str) -> None:
        super().__init__(reason)
        self.created = created
        self.reason = reason
