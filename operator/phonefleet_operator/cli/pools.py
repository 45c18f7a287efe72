"""``phonefleet pools set-account``: the upgrade step that gives existing PhonePools their account.

Pools made before pools named their Geelark account belong to the account ``default``. In a
cluster that pooled another account's phones, each such pool must get that account
(``spec.account``, set once) while no operator runs (docs/tenancy.md, "Upgrade"): an operator of
the previous release reads such a pool as invalid, and one of this release counts and writes a
pool by its account, so the other account's operator would ignore the pool (its queued bindings
admitted above the limit) until the account is set.

The command makes that edit safe to type: it refuses while a phonefleet operator Deployment has
replicas, and while the PhonePool CRD does not know ``spec.account`` yet (the API server would
drop the field without a word); it writes each pool conditionally on the version it read, and
reads back what the API server stored. Exit 0 when every pool named has the account, 1 when a
pool was refused or belongs to another account, 2 when the cluster could not be asked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import click
import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from phonefleet_operator import constants as c
from phonefleet_operator.cli.exit_codes import ERROR, PROBLEMS
from phonefleet_operator.cli.kubeconfig import unusable_kubeconfig
from phonefleet_operator.k8s import load_api_client
from phonefleet_operator.k8s.api import unavailable_text

__all__ = ["account_field_known", "pools", "running_operators", "set_account"]

#: The labels manifests/manager gives every account's operator Deployment.
OPERATOR_SELECTOR: Final = "app.kubernetes.io/name=phonefleet,app.kubernetes.io/component=operator"
CRD_NAME: Final = f"{c.POOL_PLURAL}.{c.GROUP}"
EXIT_REFUSED: Final = PROBLEMS
EXIT_UNKNOWN: Final = ERROR


def account_field_known(crd: Mapping[str, Any]) -> bool:
    """Whether the PhonePool CRD (as the API server has it) has ``spec.account`` in the schema
    of every version it serves: an older CRD would prune the field from the write."""
    versions = [v for v in crd.get("spec", {}).get("versions", []) if v.get("served")]
    return bool(versions) and all(
        "account"
        in (
            v.get("schema", {})
            .get("openAPIV3Schema", {})
            .get("properties", {})
            .get("spec", {})
            .get("properties", {})
        )
        for v in versions
    )


def running_operators(deployments: Iterable[Mapping[str, Any]]) -> list[str]:
    """``namespace/name`` of operator Deployments that ask for, or still have, a replica."""
    found = []
    for deployment in deployments:
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        if spec.get("replicas", 1) or status.get("replicas"):
            meta = deployment["metadata"]
            found.append(f"{meta['namespace']}/{meta['name']}")
    return sorted(found)


def set_account(
    names: Sequence[str], account: str, kubeconfig: str | None, *, allow_running: bool
) -> int:
    """Give each pool of ``names`` the account ``account``; return the exit code."""
    try:
        api_client = load_api_client(1, kubeconfig)
    except Exception as error:  # kubernetes' config errors: say why
        click.echo(
            f"Could not reach the cluster: {unusable_kubeconfig(kubeconfig, error)}", err=True
        )
        return EXIT_UNKNOWN
    try:
        return _set_account(api_client, names, account, allow_running=allow_running)
    except ApiException as error:
        click.echo(f"Could not set the account: the API server answered {_said(error)}", err=True)
        return EXIT_UNKNOWN
    except _Unreachable as error:
        click.echo(f"Could not set the account: {error}", err=True)
        return EXIT_UNKNOWN
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


def _set_account(
    api_client: client.ApiClient, names: Sequence[str], account: str, *, allow_running: bool
) -> int:
    extensions = client.ApiextensionsV1Api(api_client)
    crd = _plain(extensions.read_custom_resource_definition, CRD_NAME)
    if not account_field_known(crd):
        click.echo(
            "The PhonePool CRD has no spec.account yet: the API server would drop it. Apply "
            "this version's CRDs first (kubectl apply --server-side -k crds).",
            err=True,
        )
        return EXIT_REFUSED
    if not allow_running:
        deployments = _plain(
            client.AppsV1Api(api_client).list_deployment_for_all_namespaces,
            label_selector=OPERATOR_SELECTOR,
        )
        running = running_operators(deployments["items"])
        if running:
            click.echo(
                f"Operators run: {', '.join(running)}. Scale them to 0 first (kubectl scale "
                f"deploy/phonefleet-operator --replicas=0 -n <namespace>): an operator of the "
                f"previous release reads a pool with an account as invalid, and one of this "
                f"release would ignore the pool until its account is set.",
                err=True,
            )
            return EXIT_REFUSED
    custom = client.CustomObjectsApi(api_client)
    code = 0
    for name in names:
        code = max(code, _set_one(custom, name, account))
    return code


def _set_one(custom: client.CustomObjectsApi, name: str, account: str) -> int:
    try:
        pool = _plain(custom.get_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL, name)
    except ApiException as error:
        if error.status != 404:
            raise
        click.echo(f"PhonePool {name}: not found", err=True)
        return EXIT_REFUSED
    current = (pool.get("spec") or {}).get("account")
    if current == account:
        click.echo(f"PhonePool {name}: already of account {account}")
        return 0
    if current is not None:
        click.echo(
            f"PhonePool {name}: of account {current}, which cannot change: create a PhonePool "
            f"for account {account} instead",
            err=True,
        )
        return EXIT_REFUSED
    body = {
        # A precondition: the write applies to the version read, so no account set meanwhile
        # by someone else is overwritten (the CRD would refuse the change anyway).
        "metadata": {"resourceVersion": pool["metadata"]["resourceVersion"]},
        "spec": {"account": account},
    }
    try:
        written = _plain(
            custom.patch_cluster_custom_object, c.GROUP, c.VERSION, c.POOL_PLURAL, name, body
        )
    except ApiException as error:
        if error.status not in (403, 409, 422):
            raise
        click.echo(f"PhonePool {name}: refused: {_said(error)}", err=True)
        return EXIT_REFUSED
    written_spec: dict[str, Any] = written.get("spec") or {}
    stored = written_spec.get("account")
    if stored != account:  # the CRD check above should make this impossible: never guess
        click.echo(f"PhonePool {name}: the API server stored account {stored!r}", err=True)
        return EXIT_REFUSED
    holders = len((pool.get("status") or {}).get("holders") or [])
    click.echo(
        f"PhonePool {name}: account set to {account} ({holders} holders; the operator of "
        f"{account} frees those of namespaces it does not serve and counts its own bindings)"
    )
    return 0


class _Unreachable(Exception):
    """The API server could not be reached (the message says where, and what to check)."""


def _plain(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The answer of a kubernetes client call as plain JSON (API field names)."""
    try:
        response = method(*args, _preload_content=False, _request_timeout=30, **kwargs)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        api_client = method.__self__.api_client  # type: ignore[attr-defined]  # a bound API method
        raise _Unreachable(unavailable_text(api_client, method, args, error)) from None
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def _said(error: ApiException) -> str:
    """The API server's status and message (never a header or a body beyond the message)."""
    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except ValueError:
        message = error.reason
    return f"{error.status} {message}"


@click.group()
def pools() -> None:
    """PhonePools: the upgrade step that gives existing pools their Geelark account."""


@pools.command(name="set-account")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--account",
    required=True,
    help="The account's name: the PHONEFLEET_ACCOUNT of the operator that serves the pools.",
)
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Defaults to KUBECONFIG."
)
@click.option(
    "--allow-running-operators",
    is_flag=True,
    help="Do not check that every operator Deployment is scaled to 0 (operators run elsewhere).",
)
def set_account_command(
    names: tuple[str, ...], account: str, kubeconfig: str | None, allow_running_operators: bool
) -> None:
    """Set spec.account of the PhonePools NAMES, once (docs/tenancy.md, Upgrade).

    Run with every operator scaled to 0 and this version's CRDs applied: it checks both.

    Exit codes: 0 done: every pool has the account; 1 problems: refused (an operator runs, the
    CRD is older, a pool is missing or has another account); 2 error: the cluster could not be
    read, or a usage error.
    """
    sys.exit(set_account(names, account, kubeconfig, allow_running=allow_running_operators))
