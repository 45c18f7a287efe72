"""Every simulated phone's ADB endpoint, for workers that really run (the test bed's real node).

One :class:`~.adbd.FakeAdbd` per phone listens on ``config.adb_host`` at the port ``adb/getData``
reports. It takes connections only while the phone runs with ADB enabled, uses the password of
the phone's current power-on, and answers ``ro.gl.serialno`` with the phone's id. When the phone
stops or ADB goes off (through the Open API or the admin API, behind the operator's back), its
connections are cut, as a real phone's would be.

Faults for tests: ``hang(phone_id)``, ``impersonate(phone_id, other_id)``, ``drop(phone_id)``,
``heal(phone_id)``.
"""

from __future__ import annotations

import functools
import threading

from .adbd import FakeAdbd
from .engine import SimulatorEngine
from .state import Phone

__all__ = ["AdbEndpoints"]

SERIAL_PROP = "ro.gl.serialno"
# How often phones' power and ADB state is looked at to cut connections of stopped ones.
_WATCH_INTERVAL = 0.2


class AdbEndpoints:
    """ADB endpoints of all the phones one simulator engine holds (created on first sight)."""

    def __init__(self, engine: SimulatorEngine) -> None:
        self._engine = engine
        self._daemons: dict[str, FakeAdbd] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="sim-adb-watch", daemon=True)

    def start(self) -> AdbEndpoints:
        """Open every phone's port, then keep them in step with the phones."""
        self._sync()
        self._watcher.start()
        return self

    def close(self) -> None:
        """Close every port and connection."""
        self._closed.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        with self._lock:
            for daemon in self._daemons.values():
                daemon.close()
            self._daemons.clear()

    def daemon(self, phone_id: str) -> FakeAdbd:
        """The fake adbd of one phone."""
        self._sync()
        with self._lock:
            return self._daemons[phone_id]

    # ----------------------------------------------------------------- faults

    def drop(self, phone_id: str) -> None:
        """Cut the phone's open ADB connections (its network blinked)."""
        self.daemon(phone_id).drop_connections()

    def hang(self, phone_id: str) -> None:
        """The phone's adbd keeps connections open and answers nothing."""
        self.daemon(phone_id).hang = True

    def impersonate(self, phone_id: str, other_serial: str) -> None:
        """The phone's endpoint answers ``ro.gl.serialno`` with another phone's id."""
        self.daemon(phone_id).props[SERIAL_PROP] = other_serial

    def heal(self, phone_id: str) -> None:
        """Undo every fault of the phone."""
        daemon = self.daemon(phone_id)
        daemon.hang = False
        daemon.props[SERIAL_PROP] = phone_id

    # ----------------------------------------------------------------- internals

    def _usable(self, phone: Phone) -> bool:
        # Read from this thread while the event loop writes: single attribute reads, no locks.
        now = self._engine.now()
        return phone.is_on() and phone.is_adb_enabled(now)

    def _sync(self) -> None:
        for phone in list(self._engine.fleet):
            with self._lock:
                if phone.id in self._daemons or self._closed.is_set():
                    continue
                self._daemons[phone.id] = FakeAdbd(
                    props={SERIAL_PROP: phone.id},
                    password=functools.partial(_password, phone),
                    host=self._engine.config.adb_host,
                    port=phone.adb_port,
                    accepting=functools.partial(self._usable, phone),
                ).start()

    def _watch(self) -> None:
        while not self._closed.wait(_WATCH_INTERVAL):
            self._sync()
            fleet = {phone.id: phone for phone in self._engine.fleet}
            with self._lock:
                daemons = list(self._daemons.items())
            for phone_id, daemon in daemons:
                phone = fleet.get(phone_id)
                if phone is None or not self._usable(phone):
                    daemon.logged_in = False  # a new power-on asks for glogin again
                    daemon.drop_connections()


def _password(phone: Phone) -> str:
    return phone.adb_password
