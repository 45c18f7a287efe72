"""The checks of `phonefleet pools set-account` that need no cluster: does the PhonePool CRD
know spec.account, and which operator Deployments still run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from phonefleet_operator.cli.main import cli
from phonefleet_operator.cli.pools import account_field_known, running_operators

POOL_CRD = Path(__file__).parents[3] / "crds" / "phonefleet.dev_phonepools.yaml"


def crd() -> dict[str, Any]:
    """This version's PhonePool CRD."""
    loaded: dict[str, Any] = yaml.safe_load(POOL_CRD.read_text())
    return loaded


def test_this_versions_crd_knows_the_account_and_an_older_one_does_not() -> None:
    """An older CRD (no spec.account in a served version) would have the field pruned."""
    assert account_field_known(crd())
    older = copy.deepcopy(crd())
    for version in older["spec"]["versions"]:
        del version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["account"]
    assert not account_field_known(older)
    assert not account_field_known({"spec": {"versions": []}})


def deployment(namespace: str, replicas: int | None, running: int | None) -> dict[str, Any]:
    """An operator Deployment as listed: asked ``replicas`` (None: unset), ``running`` pods."""
    spec = {} if replicas is None else {"replicas": replicas}
    status = {} if running is None else {"replicas": running}
    return {
        "metadata": {"namespace": namespace, "name": "phonefleet-operator"},
        "spec": spec,
        "status": status,
    }


def test_an_operator_runs_while_it_asks_for_a_replica_or_still_has_one() -> None:
    """Scaled to 0 with its pods gone: stopped. Scaled to 0 with a pod still terminating, or
    replicas unset (Kubernetes' default is 1): running."""
    found = running_operators(
        [
            deployment("stopped", 0, None),
            deployment("stopped-counted", 0, 0),
            deployment("terminating", 0, 1),
            deployment("default-replicas", None, None),
            deployment("a-running", 2, 2),
        ]
    )
    assert found == [
        "a-running/phonefleet-operator",
        "default-replicas/phonefleet-operator",
        "terminating/phonefleet-operator",
    ]


def test_the_command_is_listed_and_requires_an_account() -> None:
    """`phonefleet pools set-account` exists; without --account it stops before any call."""
    runner = CliRunner()
    assert "set-account" in runner.invoke(cli, ["pools", "--help"]).output
    result = runner.invoke(cli, ["pools", "set-account", "some-pool"])
    assert result.exit_code == 2
    assert "--account" in result.output
