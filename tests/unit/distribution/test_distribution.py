"""Specification of what phonefleet ships: a wheel without the test bed, and locks that hold.

Everything here is offline: the wheel is built with the setuptools of the test environment
(``--no-build-isolation --no-index``), and the locks are read, never resolved.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from phonefleet_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[3]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)
#: Python 3.11 on Linux, the images' platform, for the locks' environment markers.
ENVIRONMENT = default_environment() | {"python_version": "3.11", "python_full_version": "3.11.0"}


def build_wheel(sources: Path, parts: list[str], into: Path) -> tuple[Path, str]:
    """Build a wheel offline from a clean copy of ``parts`` of ``sources`` (as the images' build
    context holds them: no build/ left over from an earlier build), with pip's quiet mode."""
    project = into / "src"
    for part in parts:
        source = sources / part
        if source.is_dir():
            shutil.copytree(source, project / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            project.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, project / part)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(into / "wheels"),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (into / "wheels").glob("*.whl")
    return wheel, done.stderr


def pins(lock: str) -> dict[str, str]:
    """name -> version of every pin of ``requirements/<lock>``."""
    text = (REPO / "requirements" / lock).read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def pyproject(path: str = "pyproject.toml") -> dict[str, object]:
    """The parsed pyproject file."""
    return tomllib.loads((REPO / path).read_text())


def requirements_of(project: dict[str, object], *extras: str) -> list[Requirement]:
    """The project's base requirements plus those of ``extras``, self-references expanded."""
    table = project["project"]
    assert isinstance(table, dict)
    name = canonicalize_name(table["name"])
    found = [Requirement(r) for r in table.get("dependencies", [])]
    pending = list(extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in table.get("optional-dependencies", {}).get(extra, []):
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == name:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)
    return found


def test_the_wheel_carries_phonefleet_alone_and_builds_without_warnings(tmp_path: Path) -> None:
    """Only phonefleet_operator and phonefleet_worker (never the test bed or a stray file), an
    SPDX license, and a quiet build that prints nothing (no setuptools deprecation warning)."""
    wheel, stderr = build_wheel(
        REPO, ["pyproject.toml", "README.md", "operator", "worker_image"], tmp_path
    )

    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = archive.read(metadata).decode()
    assert {t for t in tops if not t.endswith(".dist-info")} == {
        "phonefleet_operator",
        "phonefleet_worker",
    }
    assert "License-Expression: Apache-2.0" in headers
    assert stderr == ""


def test_the_test_bed_is_a_distribution_of_its_own(tmp_path: Path) -> None:
    """tests/support builds phonefleet-testbed, holding phonefleet_testbed and nothing else."""
    wheel, stderr = build_wheel(
        REPO / "tests" / "support", ["pyproject.toml", "phonefleet_testbed"], tmp_path
    )

    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert wheel.name.startswith("phonefleet_testbed-")
    assert {t for t in tops if not t.endswith(".dist-info")} == {"phonefleet_testbed"}
    assert stderr == ""


@pytest.mark.parametrize(
    ("lock", "project", "extras"),
    [
        ("operator.txt", "pyproject.toml", ("operator",)),
        ("worker.txt", "pyproject.toml", ("worker",)),
        ("dev.txt", "pyproject.toml", ("dev",)),
        ("dev.txt", "tests/support/pyproject.toml", ()),
        ("simulator.txt", "tests/support/pyproject.toml", ()),
    ],
)
def test_each_lock_pins_every_requirement_within_its_range(
    lock: str, project: str, extras: tuple[str, ...]
) -> None:
    """A requirement added or narrowed in a pyproject file without `make lock` fails here."""
    pinned = pins(lock)
    wanted = [
        r
        for r in requirements_of(pyproject(project), *extras)
        if r.marker is None or r.marker.evaluate(ENVIRONMENT)
    ]

    unpinned = [str(r) for r in wanted if canonicalize_name(r.name) not in pinned]
    outside = [
        f"{r} (locked {pinned[canonicalize_name(r.name)]})"
        for r in wanted
        if canonicalize_name(r.name) in pinned
        and not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert (unpinned, outside) == ([], []), f"run `make lock`: requirements/{lock} is stale"


def test_the_build_lock_satisfies_both_build_systems() -> None:
    """The images build both wheels with requirements/build.txt alone (no build isolation)."""
    pinned = pins("build.txt")
    for path in ("pyproject.toml", "tests/support/pyproject.toml"):
        build = pyproject(path)["build-system"]
        assert isinstance(build, dict)
        for text in build["requires"]:
            requirement = Requirement(text)
            assert requirement.specifier.contains(pinned[canonicalize_name(requirement.name)])


def test_every_pin_of_every_lock_is_hashed() -> None:
    """pip's --require-hashes (as the Dockerfiles use it) needs a hash on every pin."""
    for lock in sorted((REPO / "requirements").glob("*.txt")):
        blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", lock.read_text().strip())
        unhashed = [b.split()[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
        assert unhashed == [], lock.name


def test_the_default_appium_image_runs_the_appium_major_version_under_test() -> None:
    """The sidecar's default tag (vX.Y.Z-pN of the official image) and the Appium the tests
    run from npm share a major version: the worker speaks to both through one client."""
    tag = OperatorSettings().appium_image.rsplit(":", 1)[1]
    found = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-p\d+", tag)
    under_test = json.loads((REPO / "hack" / "appium" / "package.json").read_text())
    tested = under_test["dependencies"]["appium"]

    assert found is not None, tag
    assert found.group(1) == tested.split(".")[0]
