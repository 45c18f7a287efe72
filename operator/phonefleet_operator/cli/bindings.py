"""``phonefleet bindings``: write PhoneBinding manifests and check them before they are merged."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from phonefleet_operator.cli.exit_codes import DONE, ERROR, PROBLEMS
from phonefleet_operator.cli.geelark_access import (
    MISSING_CREDENTIALS,
    load_geelark_settings,
    open_inventory,
)
from phonefleet_operator.cli.manifests import (
    BindingManifest,
    find_manifest_files,
    generate_bindings,
    is_name_prefix,
    is_namespace,
    parse_phone_list,
    read_bindings,
)
from phonefleet_operator.constants import DEFAULT_ACCOUNT
from phonefleet_operator.geelark import Phone
from phonefleet_operator.services.assignments import (
    Assignment,
    Problem,
    check_with_geelark,
    find_duplicates,
)
from phonefleet_operator.services.tenancy.validation import (
    check_pools,
    read_pool_documents,
    resolve_refs,
)
from phonefleet_operator.settings import GeelarkSettings

__all__ = ["bindings"]


@click.group()
def bindings() -> None:
    """PhoneBinding manifests for GitOps: generate them, validate them before merging."""


@bindings.command()
@click.option(
    "--phones",
    required=True,
    metavar="REF,REF,...",
    help="The phones, one binding each: Geelark phone ids or exact serialNames, comma-separated.",
)
@click.option(
    "--namespace",
    "-n",
    metavar="NS",
    help="Namespace written into each binding (leave out to let kubectl or Argo CD choose).",
)
@click.option(
    "--name-prefix",
    metavar="P",
    help="Name bindings P-<ref> instead of <ref>.",
)
def generate(phones: str, namespace: str | None, name_prefix: str | None) -> None:
    """Print PhoneBinding YAML for a list of phones, ready to commit.

    A binding is named after its phone ref (P-<ref> with --name-prefix), never after its position,
    so adding or removing a phone later does not rename, and so recreate, the others. A ref that is
    no valid name (upper case, '_', too long) is lowered and cleaned and gets a short digest of
    itself, so two refs never share a name. Duplicate refs are refused.

    Exit codes: 0 done: printed; 2 error: a usage error (no phones, a duplicate ref, a bad
    prefix).

    \b
    Example:
      phonefleet bindings generate --phones phone-001,600000000000000002 -n fleet > bindings.yaml
    """
    try:
        refs = parse_phone_list(phones)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--phones'") from None
    if namespace is not None and not is_namespace(namespace):
        raise click.BadParameter(
            "a namespace is a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 63)",
            param_hint="'--namespace'",
        )
    if name_prefix is not None and not is_name_prefix(name_prefix):
        raise click.BadParameter(
            "a name prefix is a lowercase RFC 1123 label (a-z, 0-9 and '-', at most 53)",
            param_hint="'--name-prefix'",
        )
    click.echo(generate_bindings(refs, namespace=namespace, name_prefix=name_prefix), nl=False)


@bindings.command()
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, allow_dash=True, path_type=Path),
)
@click.option(
    "--offline",
    is_flag=True,
    help="Skip the Geelark checks (aliases, phones not found) even when credentials are set.",
)
@click.option(
    "--require-pools",
    is_flag=True,
    help="With PhonePool manifests among PATHS: a phone in no pool is a problem (as the operator "
    "with PHONEFLEET_REQUIRE_POOLS=true).",
)
@click.option(
    "--account",
    envvar="PHONEFLEET_ACCOUNT",
    default=DEFAULT_ACCOUNT,
    show_default=True,
    help="With PhonePool manifests among PATHS: judge by this Geelark account's pools only, as "
    "its operator does (run once per account, with its namespaces' manifests).",
)
def validate(paths: tuple[Path, ...], offline: bool, require_pools: bool, account: str) -> None:
    """Check PhoneBinding manifests before merging; exit 1 on problems.

    PATHS are files, directories (every *.yaml and *.yml below them) or - for standard input,
    for example the output of `kubectl kustomize`. Documents that are not PhoneBindings are
    ignored. Checked offline: the schema (as the API server and the admission webhook check it)
    and phones assigned to more than one binding. With Geelark credentials in
    PHONEFLEET_GEELARK_*, also: every phoneId is resolved through one listing of the account,
    which finds phones Geelark does not have and aliases (a phone's id in one binding, its
    serialName in another). With PhonePool manifests among PATHS (and Namespace manifests for
    their labels), also whether the pools would admit each binding: offline by serialName
    patterns, with Geelark by each phone's group, tags and name (docs/tenancy.md).

    Prints one line per problem, `path:line (namespace/name): problem` (line is where the
    binding's document starts, so editors open it there), and a summary on standard error.
    Exit codes: 0 done: no problems; 1 problems: some found (each is printed); 2 error: Geelark
    could not be asked (the offline checks' problems are still printed), or a usage error.
    """
    reading = _Reading.of(paths)
    manifests, problems = reading.manifests, list(reading.problems)
    assignments = [a for a in (m.assignment() for m in manifests) if a is not None]
    if not manifests and not problems:
        problems.append(
            Problem(None, f"No phones assigned to bindings: no PhoneBinding in {_names(paths)}")
        )
    problems.extend(find_duplicates(assignments))
    settings = None if offline else load_geelark_settings()
    pools = read_pool_documents(reading.texts, account)  # tenancy: this account's PhonePools
    problems.extend(pools.problems)
    if settings is not None and assignments:
        found, phones = asyncio.run(_check_with_geelark(assignments, settings, bool(pools.pools)))
        problems.extend(found)
        problems.extend(check_pools(manifests, pools, phones=phones, require_pools=require_pools))
    else:
        problems.extend(check_pools(manifests, pools))
    if settings is None and not offline:
        click.echo(f"Skipped the Geelark checks: {MISSING_CREDENTIALS}.", err=True)
    for problem in sorted(problems, key=reading.position):
        click.echo(str(problem))
    click.echo(
        f"Checked {_count(len(manifests), 'PhoneBinding')} in {_count(reading.files, 'file')}: "
        + (f"{_count(len(problems), 'problem')}." if problems else "no problems."),
        err=True,
    )
    undecided = any(problem.undecided for problem in problems)
    sys.exit(ERROR if undecided else PROBLEMS if problems else DONE)


@dataclass
class _Reading:
    """What the files held: bindings, the problems of reading them, and the order of both."""

    files: int = 0
    manifests: list[BindingManifest] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, paths: tuple[Path, ...]) -> _Reading:
        """Read every manifest file of ``paths`` (``-``: standard input) and check its bindings."""
        reading = cls()
        for file in find_manifest_files(paths):
            reading.files += 1
            reading.sources.setdefault(str(file), len(reading.sources))
            try:
                text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reading.problems.append(Problem(str(file), f"could not be read: {error}"))
                continue
            reading.texts.append((str(file), text))
            found, unreadable = read_bindings(text, str(file))
            reading.problems.extend(unreadable)
            for manifest in found:
                reading.manifests.append(manifest)
                reading.sources.setdefault(manifest.source, len(reading.sources))
                reading.problems.extend(Problem(manifest.source, m) for m in manifest.problems)
        return reading

    def position(self, problem: Problem) -> int:
        """Sort key: problems grouped by binding in file order; whole-check problems last."""
        return self.sources.get(problem.source or "", len(self.sources))


async def _check_with_geelark(
    assignments: list[Assignment], settings: GeelarkSettings, pooled: bool
) -> tuple[list[Problem], dict[str, Phone] | None]:
    """The Geelark problems, and (``pooled``: pools are judged) each phone ref's phone where
    Geelark has exactly one; both from one listing of the account, whose rate limit the
    operators share (a second inventory listed it all again)."""
    async with open_inventory(settings) as inventory:
        problems = await check_with_geelark(assignments, inventory)
        if not pooled:
            return problems, None
        return problems, await resolve_refs([a.phone_id for a in assignments], inventory)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _names(paths: tuple[Path, ...]) -> str:
    return ", ".join(str(path) for path in paths)
