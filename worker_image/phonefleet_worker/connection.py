"""The phone's ADB connection data, read from the Secret the operator mounts as a directory.

The operator writes one file per key: ``ip``, ``port``, ``password`` and ``phoneId``. Kubernetes
updates a mounted Secret by writing a new hidden folder and swapping the ``..data`` symlink, so the
files' content changes while their paths stay; the worker reads the content again on every poll
(four tiny files) and so sees a re-provisioned ADB endpoint without a restart.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Protocol

__all__ = ["AdbConnection", "ConnectionSource", "SecretDirConnectionSource", "read_connection"]

log = logging.getLogger(__name__)

IP_KEY = "ip"
PORT_KEY = "port"
PASSWORD_KEY = "password"  # noqa: S105 (a file name, not a password)
PHONE_ID_KEY = "phoneId"


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


def read_connection(directory: Path) -> AdbConnection | None:
    """Read ``ip``, ``port``, ``password`` (and ``phoneId`` if present) from ``directory``.

    Returns None when a required file is missing or empty or the port is not a TCP port number:
    the operator writes the Secret in one piece, so a partial read means "not provisioned yet".
    """
    values: dict[str, str] = {}
    for key in (IP_KEY, PORT_KEY, PASSWORD_KEY, PHONE_ID_KEY):
        try:
            values[key] = (directory / key).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            values[key] = ""
        except OSError as exc:
            log.warning("Could not read %s from %s: %s", key, directory, exc.strerror)
            return None
    ip, port, password = values[IP_KEY], values[PORT_KEY], values[PASSWORD_KEY]
    if not ip or not port or not password:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        log.warning("Ignored connection data in %s: port %r is not a TCP port", directory, port)
        return None
    return AdbConnection(ip=ip, port=int(port), password=password, phone_id=values[PHONE_ID_KEY])
