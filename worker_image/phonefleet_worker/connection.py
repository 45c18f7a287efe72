"""The phone's ADB connection data, read from the Secret the operator mounts as a directory.

The operator writes one file per key: ``ip``, ``port``, ``password`` and ``phoneId``. Kubernetes
updates a mounted Secret by writing a new hidden folder and swapping the ``..data`` symlink, so the
files' content changes while their paths stay; the worker reads the content again on every poll
(four tiny files) and so sees a re-provisioned ADB endpoint without a restart. A swap between two
of the four reads would mix the old endpoint with the new one (the old ip with the new port and
password: another phone's adbd, perhaps); a read is kept only when ``..data`` named the same
folder before and after it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

__all__ = ["AdbConnection", "ConnectionSource", "SecretDirConnectionSource", "read_connection"]

log = logging.getLogger(__name__)

IP_KEY = "ip"
PORT_KEY = "port"
PASSWORD_KEY = "password"  # noqa: S105 (a file name, not a password)
PHONE_ID_KEY = "phoneId"
_DATA_LINK = "..data"
#: Reads of the four files in a row: more swaps than this during reads only a few microseconds
#: long each mean something else rewrites the folder; the next poll reads again.
_READS = 3


@dataclasses.dataclass(frozen=True)
class AdbConnection:
    """Where one phone's adbd listens and the password Geelark's ``glogin`` wants."""

    ip: str
    port: int
    password: str = dataclasses.field(repr=False)
    phone_id: str = ""
    """The phone id the operator wrote beside the connection data ("" when it wrote none)."""

    @property
    def serial(self) -> str:
        """The adb serial of a network device: ``ip:port``."""
        return f"{self.ip}:{self.port}"


class ConnectionSource(Protocol):
    """Gives the current connection data, or None while there is none yet."""

    def current(self) -> AdbConnection | None:
        """Read the connection data as it is now."""
        ...

    def describe(self) -> str:
        """Say where the data comes from, for log lines."""
        ...


class SecretDirConnectionSource:
    """Reads the connection data from a mounted Secret directory on every call."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def current(self) -> AdbConnection | None:
        """Read the directory; None while a key is missing or invalid (the operator is not done)."""
        return read_connection(self._directory)

    def describe(self) -> str:
        """Name the directory."""
        return str(self._directory)


def _read_file(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def read_connection(
    directory: Path, *, read: Callable[[Path], str] = _read_file
) -> AdbConnection | None:
    """Read ``ip``, ``port``, ``password`` (and ``phoneId`` if present) from ``directory``.

    Returns None when a required file is missing or empty or the port is not a TCP port number:
    the operator writes the Secret in one piece, so a partial read means "not provisioned yet".
    The four files are read from one version of the Secret (see the module's docstring).
    ``read``: how a file is read (tests interleave a Secret update with it).
    """
    for _ in range(_READS):
        version = _data_version(directory)
        values = _read_values(directory, read)
        if values is None:
            return None
        if _data_version(directory) == version:
            return _connection(directory, values)
    log.warning("The connection data in %s changed while it was read: reading it later", directory)
    return None


def _data_version(directory: Path) -> str | None:
    """The folder ``..data`` names (None: no such link, as in a plain directory)."""
    try:
        return os.readlink(directory / _DATA_LINK)
    except OSError:
        return None


def _read_values(directory: Path, read: Callable[[Path], str]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for key in (IP_KEY, PORT_KEY, PASSWORD_KEY, PHONE_ID_KEY):
        try:
            values[key] = read(directory / key).strip()
        except FileNotFoundError:
            values[key] = ""
        except OSError as exc:
            log.warning("Could not read %s from %s: %s", key, directory, exc.strerror)
            return None
    return values


def _connection(directory: Path, values: dict[str, str]) -> AdbConnection | None:
    ip, port, password = values[IP_KEY], values[PORT_KEY], values[PASSWORD_KEY]
    if not ip or not port or not password:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        log.warning("Ignored connection data in %s: port %r is not a TCP port", directory, port)
        return None
    return AdbConnection(ip=ip, port=int(port), password=password, phone_id=values[PHONE_ID_KEY])
