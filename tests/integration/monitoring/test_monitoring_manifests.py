"""manifests/monitoring: the alert rules pass promtool's checks and its unit tests, and the
component builds onto manifests/default into objects that point at the operator's metrics port."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.fixtures import Kubectl
from phonefleet_testbed.prometheus import MONITORING, promtool, rule_file

HERE = repo_root() / MONITORING


def test_promtool_checks_the_alert_rules(tmp_path: Path) -> None:
    """`promtool check rules` accepts the PrometheusRule's groups: seven rules, no warning."""
    result = promtool("check", "rules", str(rule_file(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_every_alert_fires_in_the_rule_unit_tests_only_when_it_should(tmp_path: Path) -> None:
    """`promtool test rules` passes rules-test.yaml, which makes every alert fire at least once."""
    rule_file(tmp_path)
    shutil.copy(HERE / "rules-test.yaml", tmp_path / "rules-test.yaml")
    result = promtool("test", "rules", "rules-test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    rules = yaml.safe_load((HERE / "prometheusrule.yaml").read_text())
    alerts = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"]}
    cases = yaml.safe_load((HERE / "rules-test.yaml").read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    assert fired == alerts


def _build(kubectl: Kubectl, overlay: Path) -> list[dict[str, Any]]:
    """manifests/default with the monitoring component, as a user's overlay would add it."""
    root = repo_root() / "manifests"
    # kustomize takes only relative paths to other kustomizations.
    default, monitoring = (
        os.path.relpath(root / name, overlay) for name in ("default", "monitoring")
    )
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [default],
                "components": [monitoring],
            }
        )
    )
    return [d for d in yaml.safe_load_all(kubectl("kustomize", str(overlay)).stdout) if d]


def test_the_component_scrapes_the_port_the_operator_serves_metrics_on(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """The Service selects the operator's pods and targets its "metrics" port, which is
    PHONEFLEET_METRICS_PORT; the ServiceMonitor selects the Service; the dashboard ships in a
    ConfigMap Grafana's sidecar loads; the PodMonitor scrapes the workers' probe port."""
    objects = _build(kubectl, tmp_path)
    by_kind = {(o["kind"], o["metadata"]["name"]): o for o in objects}

    deployment = by_kind[("Deployment", "phonefleet-operator")]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ports["metrics"] == int(env["PHONEFLEET_METRICS_PORT"])

    service = by_kind[("Service", "phonefleet-operator-metrics")]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()

    monitor = by_kind[("ServiceMonitor", "phonefleet-operator")]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"

    workers = by_kind[("PodMonitor", "phonefleet-workers")]
    assert workers["spec"]["podMetricsEndpoints"][0]["port"] == "probe"

    dashboard = by_kind[("ConfigMap", "phonefleet-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["phonefleet.json"])["uid"] == "phonefleet"
    assert ("PrometheusRule", "phonefleet") in by_kind
