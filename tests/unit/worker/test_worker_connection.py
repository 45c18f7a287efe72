"""The connection data read from the Secret the operator mounts as a directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phonefleet_worker.connection import AdbConnection, SecretDirConnectionSource, read_connection

GOOD = {"ip": "10.7.0.21", "port": "40117", "password": "gl-pw-93e1c7", "phoneId": "5262"}


def write_secret(directory: Path, values: dict[str, str], *, version: str = "v1") -> None:
    """Write ``values`` the way the kubelet does: a data folder, ``..data`` and per-key links."""
    data = directory / f"..{version}"
    data.mkdir(parents=True)
    for key, value in values.items():
        (data / key).write_text(value)
    link = directory / "..data"
    staging = directory / "..data_tmp"
    staging.symlink_to(data.name)
    staging.replace(link)
    for key in values:
        entry = directory / key
        if not entry.is_symlink():
            entry.symlink_to(Path("..data") / key)


def test_a_complete_secret_gives_the_connection_data(tmp_path: Path) -> None:
    """ip, port, password and phoneId become one AdbConnection with serial ip:port."""
    write_secret(tmp_path, GOOD)

    connection = read_connection(tmp_path)

    assert connection == AdbConnection("10.7.0.21", 40117, "gl-pw-93e1c7", "5262")
    assert connection.serial == "10.7.0.21:40117"


def test_values_are_stripped_of_surrounding_whitespace(tmp_path: Path) -> None:
    """A trailing newline from ``kubectl create secret --from-file`` does not count."""
    write_secret(tmp_path, {key: f" {value}\n" for key, value in GOOD.items()})

    assert read_connection(tmp_path) == AdbConnection("10.7.0.21", 40117, "gl-pw-93e1c7", "5262")


def test_the_phone_id_file_is_optional(tmp_path: Path) -> None:
    """Without phoneId the data is still usable; the identity check on the device decides."""
    write_secret(tmp_path, {k: v for k, v in GOOD.items() if k != "phoneId"})

    connection = read_connection(tmp_path)

    assert connection is not None
    assert connection.phone_id == ""


@pytest.mark.parametrize(
    "values",
    [
        {},
        {k: v for k, v in GOOD.items() if k != "password"},
        {**GOOD, "ip": ""},
        {**GOOD, "port": "adb"},
        {**GOOD, "port": "70000"},
        {**GOOD, "port": "0"},
    ],
    ids=["empty", "no-password", "empty-ip", "port-not-a-number", "port-too-big", "port-zero"],
)
def test_incomplete_or_invalid_data_means_not_provisioned_yet(
    tmp_path: Path, values: dict[str, str]
) -> None:
    """Missing or unusable keys read as "no connection data yet", never as an error."""
    write_secret(tmp_path, values)

    assert read_connection(tmp_path) is None


def test_a_directory_that_does_not_exist_has_no_connection_data(tmp_path: Path) -> None:
    """Before the volume is mounted there is simply nothing to read."""
    assert read_connection(tmp_path / "not-mounted") is None


def test_an_updated_secret_is_seen_on_the_next_read(tmp_path: Path) -> None:
    """The kubelet's ..data symlink swap changes what the same paths hold; the source rereads."""
    write_secret(tmp_path, GOOD)
    source = SecretDirConnectionSource(tmp_path)
    before = source.current()

    write_secret(tmp_path, {**GOOD, "port": "40999", "password": "gl-pw-new"}, version="v2")
    after = source.current()

    assert before is not None
    assert after is not None
    assert (before.port, after.port) == (40117, 40999)
    assert after.password == "gl-pw-new"
    assert os.readlink(tmp_path / "..data") == "..v2"


def test_a_secret_updated_between_two_files_read_is_read_again_whole(tmp_path: Path) -> None:
    """The kubelet swaps ``..data`` after the ip was read and before the port: the answer is
    the new endpoint whole, never the old ip with the new port and password."""
    write_secret(tmp_path, GOOD)
    new = {**GOOD, "ip": "10.7.0.99", "port": "40999", "password": "gl-pw-new"}
    swapped: list[str] = []

    def read_then_swap(path: Path) -> str:
        content = path.read_text(encoding="utf-8")
        if path.name == "ip" and not swapped:
            write_secret(tmp_path, new, version="v2")
            swapped.append("v2")
        return content

    connection = read_connection(tmp_path, read=read_then_swap)

    assert swapped == ["v2"]
    assert connection == AdbConnection("10.7.0.99", 40999, "gl-pw-new", "5262")


def test_the_password_is_not_in_the_repr() -> None:
    """Printing or logging the connection data never shows the password."""
    connection = AdbConnection("10.7.0.21", 40117, "gl-pw-93e1c7", "5262")

    assert "gl-pw-93e1c7" not in repr(connection)
    assert "10.7.0.21" in repr(connection)
