"""A real Prometheus for the tests: built by hack/prometheus/build.sh, run on loopback.

It scrapes the targets it is given every second, loads the alert rules, and answers PromQL over
its HTTP API; ``selectors`` asks it to parse an expression and returns every series selector in
it, so a test can check that each one matches something.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from phonefleet_testbed.binaries import repo_root
from phonefleet_testbed.lifecycle import StartStop
from phonefleet_testbed.processes import ManagedProcess, free_port
from phonefleet_testbed.waiting import wait_for

__all__ = [
    "MONITORING",
    "PrometheusServer",
    "prometheus_bin_dir",
    "promtool",
    "rule_file",
    "selector_text",
]

MONITORING = "manifests/monitoring"


def prometheus_bin_dir() -> Path:
    """The folder holding ``prometheus`` and ``promtool``; fails naming the command that builds
    them (``PHONEFLEET_PROMETHEUS_BIN_DIR`` points at ready binaries instead)."""
    explicit = os.environ.get("PHONEFLEET_PROMETHEUS_BIN_DIR")
    if explicit:
        folder = Path(explicit)
    else:
        go_mod = (repo_root() / "hack" / "prometheus" / "go.mod").read_text()
        found = re.search(r"^require github\.com/prometheus/prometheus (\S+)$", go_mod, re.M)
        if found is None:
            raise RuntimeError(
                "hack/prometheus/go.mod does not require github.com/prometheus/prometheus"
            )
        cache = os.environ.get("PHONEFLEET_CACHE_DIR") or str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "phonefleet"
        )
        folder = Path(cache) / "prometheus" / f"prometheus-{found.group(1)}"
    missing = [n for n in ("prometheus", "promtool") if not (folder / n).is_file()]
    if missing:
        raise RuntimeError(
            f"Prometheus is not built ({', '.join(missing)} missing in {folder}): run `make deps` "
            "(or hack/prometheus/build.sh)"
        )
    return folder


def rule_file(directory: Path) -> Path:
    """The PrometheusRule's spec written as a plain rule file ``phonefleet.rules.yaml``."""
    rule = yaml.safe_load((repo_root() / MONITORING / "prometheusrule.yaml").read_text())
    path = directory / "phonefleet.rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def selector_text(node: Mapping[str, Any]) -> str:
    """A series selector of Prometheus' parse tree as PromQL (``{__name__="x",a="b"}``)."""
    matchers = ",".join(f"{m['name']}{m['type']}{json.dumps(m['value'])}" for m in node["matchers"])
    return "{" + matchers + "}"


class PrometheusServer(StartStop):
    """``prometheus`` scraping ``targets`` (job -> host:port) every second, with our rules."""

    def __init__(self, targets: Mapping[str, Sequence[str]]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="phonefleet-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = rule_file(self._dir)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
                for job, addresses in targets.items()
            ],
        }
        config_path = self._dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self._process = ManagedProcess(
            "prometheus",
            [
                str(prometheus_bin_dir() / "prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            self._dir,
        )

    def start(self) -> None:
        """Start Prometheus and return once it is ready."""
        self._process.start()
        wait_for(self._ready, 60, message=lambda: f"Prometheus ready\n{self._process.log_tail()}")

    def stop(self) -> None:
        """Stop Prometheus."""
        self._process.stop()

    def _ready(self) -> bool:
        self._process.check_running()
        return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def _api(self, path: str, **params: str) -> Any:
        reply = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = reply.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {path} {params}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now (a scalar becomes one series)."""
        data = self._api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def selectors(self, expr: str) -> list[str]:
        """Every series selector in ``expr`` (instant or range), from Prometheus' own parser."""
        return [selector_text(node) for node in _walk(self._api("parse_query", query=expr))]

    def targets_up(self) -> bool:
        """Whether every scrape target answered its last scrape."""
        active = self._api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def log_tail(self) -> str:
        """The server's last log lines, for failure messages."""
        return self._process.log_tail()


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        if node.get("type") in ("vectorSelector", "matrixSelector"):
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller checks the exit code and output."""
    return subprocess.run(
        [str(prometheus_bin_dir() / "promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
