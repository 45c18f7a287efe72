"""`phonefleet bindings` as a GitOps pre-merge check: the real console script, a real simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonefleet_testbed.geelark_sim import (
    DEFAULT_TOKEN,
    GeelarkSimulator,
    SimulatorConfig,
    seed_id,
)

PHONEFLEET = Path(sys.executable).parent / "phonefleet"
#: More than two pages of Geelark's phone list (100 per page), so "one listing" means 3 calls.
PHONES = 250


@pytest.fixture(scope="module")
def simulator() -> Iterator[GeelarkSimulator]:
    """A Geelark simulator seeded with phone-001 ... phone-250."""
    with GeelarkSimulator(SimulatorConfig(phones=PHONES)) as sim:
        yield sim


def geelark_env(url: str | None) -> dict[str, str]:
    """The environment of a shell: Geelark credentials for ``url``, or none at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_GEELARK_")}
    if url is not None:
        env |= {
            "PHONEFLEET_GEELARK_URL": url,
            "PHONEFLEET_GEELARK_TOKEN": DEFAULT_TOKEN,
            "PHONEFLEET_GEELARK_MAX_ATTEMPTS": "1",
        }
    return env


def phonefleet(
    *args: str, url: str | None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `phonefleet` console script, as a CI job would."""
    return subprocess.run(
        [str(PHONEFLEET), *args],
        env=geelark_env(url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def binding(name: str, namespace: str, phone_id: str) -> str:
    """One PhoneBinding document as a person writes it (phoneId quoted)."""
    return (
        "apiVersion: phonefleet.dev/v1alpha1\n"
        "kind: PhoneBinding\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f'spec:\n  phoneId: "{phone_id}"\n'
    )


def test_generated_bindings_validate_clean_with_one_listing(
    simulator: GeelarkSimulator, tmp_path: Path
) -> None:
    """generate's output passes validate against Geelark, resolved through one paged listing."""
    refs = ["phone-001", seed_id(2), "phone-250", seed_id(120)]
    generated = phonefleet(
        "bindings", "generate", "--phones", ",".join(refs), "--namespace", "fleet", url=None
    )
    assert generated.returncode == 0, generated.stderr
    (tmp_path / "bindings.yaml").write_text(generated.stdout)
    simulator.admin.reset_counters()

    checked = phonefleet("bindings", "validate", str(tmp_path), url=simulator.base_url)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == ""
    assert "Checked 4 PhoneBindings in 1 file: no problems." in checked.stderr
    assert simulator.admin.counters().calls("phone/list") == 3  # ceil(250 / 100), not 4 x 3


def test_with_pools_the_geelark_and_pool_checks_share_one_listing(
    simulator: GeelarkSimulator, tmp_path: Path
) -> None:
    """With a PhonePool among the manifests the pools are judged by each phone's Geelark
    attributes too: from the same paged listing as the Geelark checks (3 calls), where a second
    inventory listed the account again (6), on the rate limit the operators share."""
    pool = (
        "apiVersion: phonefleet.dev/v1alpha1\n"
        "kind: PhonePool\n"
        "metadata: {name: fleet-phones}\n"
        'spec: {phones: {serialNames: ["phone-*"]}, namespaces: {names: [fleet]}}\n'
    )
    (tmp_path / "pool.yaml").write_text(pool)
    (tmp_path / "bindings.yaml").write_text(
        binding("one", "fleet", "phone-001") + "---\n" + binding("two", "fleet", "phone-250")
    )
    simulator.admin.reset_counters()

    checked = phonefleet("bindings", "validate", str(tmp_path), url=simulator.base_url)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert simulator.admin.counters().calls("phone/list") == 3


def test_a_broken_directory_gets_one_line_per_problem_and_exit_1(
    simulator: GeelarkSimulator, tmp_path: Path
) -> None:
    """A duplicate across files, an id/serialName alias, a missing phone and a schema error."""
    (tmp_path / "team-a").mkdir()
    (tmp_path / "team-b").mkdir()
    (tmp_path / "team-a" / "bindings.yaml").write_text(
        binding("alpha", "team-a", "phone-001")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\n---\n"
        + binding("bravo", "team-a", "phone-002")
    )
    (tmp_path / "team-b" / "bindings.yml").write_text(
        binding("charlie-duplicate", "team-b", "phone-001")
        + "---\n"
        + binding("delta-alias", "team-b", seed_id(2))
        + "---\n"
        + binding("echo-missing", "team-b", "phone-404")
        + "---\n"
        + binding("foxtrot-schema", "team-b", "phone-003").replace(
            'spec:\n  phoneId: "phone-003"\n', "spec:\n  phoneId: 600000000000000003\n"
        )
    )
    simulator.admin.reset_counters()

    result = phonefleet("bindings", "validate", ".", url=simulator.base_url, cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "team-b/bindings.yml:1 (team-b/charlie-duplicate): Duplicate phone assignments: "
        "{'phone-001'} (also assigned by team-a/bindings.yaml:1 (team-a/alpha))",
        "team-b/bindings.yml:9 (team-b/delta-alias): Duplicate phone assignments: "
        f"{{'{seed_id(2)}', 'phone-002'}} "
        f"(phone {seed_id(2)}, also assigned by team-a/bindings.yaml:14 (team-a/bravo))",
        "team-b/bindings.yml:17 (team-b/echo-missing): Phone 'phone-404' not found in Geelark",
        "team-b/bindings.yml:25 (team-b/foxtrot-schema): spec.phoneId: Input should be a valid "
        'string (quote it, phoneId: "600000000000000003": unquoted digits are a number in YAML)',
    ]
    assert "Checked 6 PhoneBindings in 2 files: 4 problems." in result.stderr
    assert simulator.admin.counters().calls("phone/list") == 3


def test_without_credentials_only_the_offline_checks_run(tmp_path: Path) -> None:
    """No credentials: duplicates are still found, and the skipped Geelark checks are named."""
    (tmp_path / "a.yaml").write_text(
        binding("alpha", "a", "phone-001") + "---\n" + binding("bravo", "a", "phone-404")
    )

    result = phonefleet("bindings", "validate", str(tmp_path), url=None)

    assert result.returncode == 0, result.stdout
    assert "Skipped the Geelark checks: no Geelark credentials" in result.stderr


def test_geelark_unreachable_fails_the_check_in_the_seeds_words(tmp_path: Path) -> None:
    """When Geelark cannot be reached the check fails with "Failed to validate phones ...", and
    exits 2: the manifests were not found wrong, the check could not be made."""
    with GeelarkSimulator(SimulatorConfig(phones=1)) as gone:
        url = gone.base_url
    (tmp_path / "a.yaml").write_text(binding("alpha", "a", "phone-001"))

    result = phonefleet("bindings", "validate", str(tmp_path), url=url)

    assert result.returncode == 2
    assert result.stdout == (
        f"Failed to validate phones with Geelark: Geelark could not be reached at {url} for "
        "/open/v1/phone/list: could not connect (ClientConnectorError); check "
        "PHONEFLEET_GEELARK_URL\n"
    )


def test_generate_refuses_duplicates_with_the_seeds_message() -> None:
    """A phone listed twice is refused before any YAML is printed."""
    result = phonefleet(
        "bindings", "generate", "--phones", "phone-001,phone-002,phone-001", url=None
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Duplicate phone assignments: {'phone-001'}" in result.stderr
