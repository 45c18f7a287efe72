"""The simulated phones: their model, their power and ADB state machine, and the fleet.

Power moves stopped (2) -> starting (1) -> running (0). The starting -> running step is not a
timer: a phone stores when it becomes ready and its status is computed from the clock on every
read, so no background task exists and a `ManualClock` can step through boots. ADB works the
same way. Expired (3) phones never start.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

SEED_ID_BASE = 600_000_000_000_000_000
"""Phone number n gets the id str(SEED_ID_BASE + n): 18 digits, stable from run to run."""

GROUP_ID = "700000000000000001"
DEFAULT_GROUP = "phonefleet"
DEFAULT_OS_VERSION = "Android 12"
DEFAULT_DEVICE_MODEL = "Pixel 6"
CHARGING_METHOD = "Per-minute usage"


class PhoneStatus(IntEnum):
    """Geelark's phone status codes."""

    RUNNING = 0
    STARTING = 1
    STOPPED = 2
    EXPIRED = 3


class PhoneExistsError(ValueError):
    """A phone with that id is already in the fleet."""


class PowerJournal:
    """Every power change of every phone, numbered in the order the simulator made them.

    A phone going on (starting) or off, through the Open API, the admin API or its deletion, is
    one entry. A test that replays the entries knows which phones were on at every moment of the
    simulator's own order, between its polls too (the chaos test counts a pool's billed phones
    this way). The oldest entries are dropped beyond ``limit``; a reader sees the gap in ``seq``.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._entries: deque[tuple[int, str, bool]] = deque(maxlen=limit)
        self._seq = 0

    def record(self, phone_id: str, on: bool) -> None:
        """The phone went on (True) or off (False)."""
        self._seq += 1
        self._entries.append((self._seq, phone_id, on))

    def since(self, after: int) -> list[dict[str, Any]]:
        """The entries numbered above ``after``, oldest first."""
        return [
            {"seq": seq, "id": phone_id, "on": on}
            for seq, phone_id, on in self._entries
            if seq > after
        ]


def seed_name(number: int) -> str:
    """The serialName of seeded phone `number`: phone-001, ..., phone-1000."""
    return f"phone-{number:03d}"


def seed_id(number: int) -> str:
    """The id of phone `number` (seeded or created without an explicit id)."""
    return str(SEED_ID_BASE + number)


def supports_adb(os_version: str) -> bool:
    """Whether Geelark offers ADB on this Android version (every one it sells except Android 10)."""
    match = re.search(r"\d+", os_version)
    return not (match and int(match.group()) == 10)


def new_password(previous: str = "") -> str:
    """A fresh glogin password (6 hex characters like Geelark's), never equal to `previous`."""
    while True:
        candidate = secrets.token_hex(3)
        if candidate != previous:
            return candidate


@dataclass
class Phone:
    """One cloud phone and its power and ADB state."""

    id: str
    serial_name: str
    serial_no: str
    adb_port: int
    os_version: str = DEFAULT_OS_VERSION
    device_model: str = DEFAULT_DEVICE_MODEL
    remark: str = ""
    group_name: str = DEFAULT_GROUP
    tags: list[str] = field(default_factory=list)
    expired: bool = False
    powered_at: float | None = None
    """When the current power-on began; None while stopped."""
    ready_at: float | None = None
    """When the current power-on finishes booting."""
    adb_ready_at: float | None = None
    """When ADB, once asked for, becomes usable; None while ADB is off."""
    adb_password: str = ""
    """The glogin password of the current power-on; a new one is drawn on every start."""
    start_count: int = 0
    """How many times the Open API started this phone from stopped."""
    stop_count: int = 0
    """How many times the Open API stopped this phone while it was on."""
    journal: PowerJournal | None = field(default=None, repr=False, compare=False)
    """Where power changes are recorded (the fleet's)."""

    def status(self, now: float) -> PhoneStatus:
        """The status Geelark would report at time `now`."""
        if self.expired:
            return PhoneStatus.EXPIRED
        if self.powered_at is None:
            return PhoneStatus.STOPPED
        if self.ready_at is not None and now < self.ready_at:
            return PhoneStatus.STARTING
        return PhoneStatus.RUNNING

    def is_on(self) -> bool:
        """Whether the phone is starting or running (and so billed)."""
        return self.powered_at is not None

    def supports_adb(self) -> bool:
        """Whether this phone's model offers ADB at all."""
        return supports_adb(self.os_version)

    def is_adb_enabled(self, now: float) -> bool:
        """Whether ADB was switched on and has finished enabling."""
        return self.adb_ready_at is not None and now >= self.adb_ready_at

    def power_on(self, now: float, boot_seconds: float) -> bool:
        """Start booting unless already on; return whether a new power-on began."""
        if self.is_on():
            return False
        self.powered_at = now
        self.ready_at = now + boot_seconds
        self.adb_password = new_password(self.adb_password)
        if self.journal is not None:
            self.journal.record(self.id, True)
        return True

    def power_off(self) -> bool:
        """Shut down (ADB goes off with it); return whether the phone was on."""
        was_on = self.is_on()
        self.powered_at = None
        self.ready_at = None
        self.adb_ready_at = None
        if was_on and self.journal is not None:
            self.journal.record(self.id, False)
        return was_on

    def set_adb(self, now: float, open_: bool, enable_seconds: float) -> None:
        """Switch ADB on (usable after `enable_seconds`) or off; re-enabling restarts the delay."""
        self.adb_ready_at = now + enable_seconds if open_ else None

    def to_item(self, now: float) -> dict[str, Any]:
        """The phone as an item of `phone/list`."""
        return {
            "id": self.id,
            "serialName": self.serial_name,
            "serialNo": self.serial_no,
            "group": {"id": GROUP_ID, "name": self.group_name, "remark": ""},
            "remark": self.remark,
            "status": int(self.status(now)),
            "tags": [{"name": tag} for tag in self.tags],
            "equipmentInfo": {
                "countryName": "",
                "osVersion": self.os_version,
                "deviceBrand": "Google",
                "deviceModel": self.device_model,
                "deviceName": "",
                "netType": 0,
                "language": "en-US",
            },
            "proxy": {},
            "chargeMode": 0,
            "hasBind": False,
            "rpaStatus": 0,
        }

    def to_admin_view(self, now: float) -> dict[str, Any]:
        """The phone as the admin API shows it, simulator-internal state included."""
        return {
            "id": self.id,
            "serialName": self.serial_name,
            "serialNo": self.serial_no,
            "status": int(self.status(now)),
            "osVersion": self.os_version,
            "remark": self.remark,
            "groupName": self.group_name,
            "tags": list(self.tags),
            "adbOpen": self.is_adb_enabled(now),
            "adbRequested": self.adb_ready_at is not None,
            "adbPort": str(self.adb_port),
            "adbPassword": self.adb_password,
            "runningSince": self.powered_at,
            "upSeconds": None if self.powered_at is None else now - self.powered_at,
            "startCount": self.start_count,
            "stopCount": self.stop_count,
        }


class Fleet:
    """All phones of the simulated account, by id, in creation order."""

    def __init__(self, adb_port_base: int) -> None:
        self._phones: dict[str, Phone] = {}
        self._adb_port_base = adb_port_base
        self._last_number = 0
        self.journal = PowerJournal()

    def __len__(self) -> int:
        return len(self._phones)

    def __iter__(self) -> Iterator[Phone]:
        return iter(self._phones.values())

    def get(self, phone_id: str) -> Phone | None:
        """The phone with this id, if any."""
        return self._phones.get(phone_id)

    def seed(self, count: int) -> None:
        """Add `count` phones named phone-001, phone-002, ... with ids seed_id(1), ..."""
        for _ in range(count):
            self.create(serial_name=seed_name(self._last_number + 1))

    def create(
        self,
        serial_name: str,
        *,
        phone_id: str | None = None,
        os_version: str = DEFAULT_OS_VERSION,
        remark: str = "",
        group_name: str = DEFAULT_GROUP,
        tags: Iterable[str] = (),
    ) -> Phone:
        """Add a phone; without `phone_id` it gets the next stable id. Raises PhoneExistsError."""
        number = self._last_number + 1
        if phone_id is None:
            phone_id = seed_id(number)
            while phone_id in self._phones:
                number += 1
                phone_id = seed_id(number)
        if phone_id in self._phones:
            raise PhoneExistsError(phone_id)
        self._last_number = number
        phone = Phone(
            id=phone_id,
            serial_name=serial_name,
            serial_no=str(number),
            adb_port=self._adb_port_base + number,
            os_version=os_version,
            remark=remark,
            group_name=group_name,
            tags=list(tags),
            journal=self.journal,
        )
        self._phones[phone_id] = phone
        return phone

    def delete(self, phone_id: str) -> bool:
        """Remove a phone; return whether it existed (a phone that was on is journaled off)."""
        phone = self._phones.pop(phone_id, None)
        if phone is not None:
            phone.power_off()
        return phone is not None

    def running_ids(self) -> list[str]:
        """Ids of the phones that are on (starting or running): the ones being billed."""
        return [phone.id for phone in self._phones.values() if phone.is_on()]
