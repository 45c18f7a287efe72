"""`phonefleet bindings` in-process: options, exit codes and offline validation (no Geelark)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from phonefleet_operator.cli.main import cli

VALID = """\
apiVersion: phonefleet.dev/v1alpha1
kind: PhoneBinding
metadata:
  name: {name}
spec:
  phoneId: {phone}
"""


@pytest.fixture(autouse=True)
def no_geelark_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PHONEFLEET_GEELARK_* from the developer's shell reaches these tests."""
    for name in ("TOKEN", "APP_ID", "API_KEY", "URL", "TIMEOUT_SECONDS", "MAX_ATTEMPTS"):
        monkeypatch.delenv(f"PHONEFLEET_GEELARK_{name}", raising=False)


def run(*args: str, stdin: str | None = None) -> Result:
    """Run the phonefleet CLI in-process."""
    return CliRunner().invoke(cli, list(args), input=stdin)


def write(path: Path, text: str) -> Path:
    """Write a file, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_command_has_help() -> None:
    """Each group and command answers --help and -h."""
    for args in (
        [],
        ["bindings"],
        ["bindings", "generate"],
        ["bindings", "validate"],
        ["phones"],
        ["phones", "list"],
    ):
        for flag in ("--help", "-h"):
            result = run(*args, flag)
            assert result.exit_code == 0, (args, result.output)
            assert "Usage: " in result.output


def test_generate_prints_one_binding_per_phone() -> None:
    """generate prints a multi-document YAML stream of PhoneBindings on standard output."""
    result = run("bindings", "generate", "--phones", "phone-001,phone-002", "-n", "fleet")

    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["metadata"] for d in documents] == [
        {"name": "phone-001", "namespace": "fleet"},
        {"name": "phone-002", "namespace": "fleet"},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phones", "a,b,a"], "Duplicate phone assignments: {'a'}"),
        (["--phones", ","], "No phones assigned to bindings. Use --phones phone1,phone2,..."),
        (["--phones", "a", "--namespace", "Team_A"], "Invalid value for '--namespace'"),
        (["--phones", "a", "--name-prefix", "-x"], "Invalid value for '--name-prefix'"),
        ([], "Missing option '--phones'"),
    ],
    ids=["duplicates", "empty", "bad-namespace", "bad-prefix", "no-phones"],
)
def test_generate_refuses_bad_input_as_a_usage_error(args: list[str], message: str) -> None:
    """Bad --phones, --namespace or --name-prefix exit 2 with the reason and print no YAML."""
    result = run("bindings", "generate", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_validate_passes_a_clean_directory_and_says_geelark_was_skipped(tmp_path: Path) -> None:
    """Clean manifests exit 0; without credentials the Geelark checks are skipped, and said so."""
    write(tmp_path / "a.yaml", VALID.format(name="alpha", phone="phone-001"))
    write(tmp_path / "sub" / "b.yml", VALID.format(name="bravo", phone="phone-002"))

    result = run("bindings", "validate", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Skipped the Geelark checks: no Geelark credentials" in result.stderr
    assert "Checked 2 PhoneBindings in 2 files: no problems." in result.stderr


def test_validate_reports_offline_problems_one_line_each_and_exits_1(tmp_path: Path) -> None:
    """Schema problems and duplicates across files print one line each, and exit 1."""
    first = write(tmp_path / "a.yaml", VALID.format(name="alpha", phone="phone-001"))
    second = write(
        tmp_path / "b.yaml",
        VALID.format(name="bravo", phone="phone-001")
        + "---\n"
        + VALID.format(name="charlie", phone='""'),
    )

    result = run("bindings", "validate", "--offline", str(tmp_path))

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [  # path:line where each document starts
        f"{second}:1 (bravo): Duplicate phone assignments: {{'phone-001'}} "
        f"(also assigned by {first}:1 (alpha))",
        f"{second}:8 (charlie): spec.phoneId: String should have at least 1 character",
    ]
    assert "Skipped" not in result.stderr
    assert "2 problems." in result.stderr


def test_validate_reads_standard_input_for_a_dash() -> None:
    """`-` reads manifests from standard input, e.g. the output of kubectl kustomize."""
    text = VALID.format(name="alpha", phone="x") + "---\n" + VALID.format(name="bravo", phone="x")

    result = run("bindings", "validate", "-", stdin=text)

    assert result.exit_code == 1
    assert result.stdout.startswith("-:8 (bravo): Duplicate phone assignments: {'x'}")


def test_validate_without_any_binding_fails(tmp_path: Path) -> None:
    """A path holding no PhoneBinding at all is a problem: the check looked in the wrong place."""
    write(tmp_path / "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")

    result = run("bindings", "validate", str(tmp_path))

    assert result.exit_code == 1
    assert result.stdout == f"No phones assigned to bindings: no PhoneBinding in {tmp_path}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing argument 'PATHS...'"),
        (["/no/such/dir"], "does not exist"),
        (["--frobnicate", "."], "No such option"),
    ],
    ids=["no-paths", "missing-path", "bad-option"],
)
def test_validate_usage_errors_exit_2(args: list[str], message: str) -> None:
    """Missing or nonexistent paths and unknown options are usage errors: exit code 2."""
    result = run("bindings", "validate", *args)

    assert result.exit_code == 2
    assert message in result.stderr


def test_validate_refuses_invalid_geelark_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Geelark setting other than the credentials that is invalid is a usage error."""
    write(tmp_path / "a.yaml", VALID.format(name="alpha", phone="phone-001"))
    monkeypatch.setenv("PHONEFLEET_GEELARK_TOKEN", "t")
    monkeypatch.setenv("PHONEFLEET_GEELARK_TIMEOUT_SECONDS", "-1")

    result = run("bindings", "validate", str(tmp_path))

    assert result.exit_code == 2
    assert "invalid PHONEFLEET_GEELARK_* settings" in result.stderr
    assert "PHONEFLEET_GEELARK_TIMEOUT_SECONDS" in result.stderr


def test_phones_list_needs_credentials() -> None:
    """phones list without Geelark credentials is a usage error naming the variables."""
    result = run("phones", "list")

    assert result.exit_code == 2
    assert "PHONEFLEET_GEELARK_TOKEN" in result.stderr


def test_validate_exits_2_when_geelark_cannot_be_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Geelark unreachable (port 9): the check could not be made, so exit 2, not 1 (the
    manifests were not found wrong); the offline problems are still printed."""
    write(tmp_path / "a.yaml", VALID.format(name="alpha", phone="phone-001"))
    write(tmp_path / "b.yaml", VALID.format(name="beta", phone="phone-001"))
    monkeypatch.setenv("PHONEFLEET_GEELARK_TOKEN", "t")
    monkeypatch.setenv("PHONEFLEET_GEELARK_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PHONEFLEET_GEELARK_MAX_ATTEMPTS", "1")  # one refused connection is enough

    result = run("bindings", "validate", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert "Duplicate phone assignments: {'phone-001'}" in result.stdout
    assert "Failed to validate phones with Geelark: Geelark could not be reached" in result.stdout


def test_phones_list_exits_2_when_geelark_cannot_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing could be listed: exit 2 (could not decide), one line naming Geelark's address."""
    monkeypatch.setenv("PHONEFLEET_GEELARK_TOKEN", "t")
    monkeypatch.setenv("PHONEFLEET_GEELARK_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PHONEFLEET_GEELARK_MAX_ATTEMPTS", "1")  # one refused connection is enough

    result = run("phones", "list", "--kubeconfig", "/nonexistent/kubeconfig")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Failed to list phones with Geelark: ")
    assert "http://127.0.0.1:9" in result.stderr
