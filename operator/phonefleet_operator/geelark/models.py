"""Typed views of Geelark's replies: phones, statuses, starts, ADB endpoints, per-item outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "AdbEndpoint",
    "BatchResult",
    "ItemFailure",
    "Phone",
    "PhonePage",
    "PhoneState",
    "PhoneStatus",
    "StartResult",
]

T = TypeVar("T")


def _as_text(value: Any) -> Any:
    """Ids and serial numbers are strings on the wire; accept numbers without losing digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: A digit string that may arrive as a JSON number.
Digits = Annotated[str, BeforeValidator(_as_text)]


class PhoneStatus(IntEnum):
    """Geelark's power state of a phone (``status`` in list and status replies)."""

    UNKNOWN = -1
    """A code this client does not know; kept instead of failing the whole reply."""
    RUNNING = 0
    """Started: the phone is up and billed per minute."""
    STARTING = 1
    """Booting after a start call."""
    SHUT_DOWN = 2
    """Stopped."""
    EXPIRED = 3
    """The phone's subscription ran out; it cannot be started."""

    @classmethod
    def _missing_(cls, value: object) -> PhoneStatus:
        return cls.UNKNOWN


class _Reply(BaseModel):
    """Base of every reply model: camelCase on the wire, unknown fields ignored, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Phone(_Reply):
    """One phone of the account, as ``/phone/list`` reports it."""

    id: Digits
    """The canonical identity: a string of digits that never changes."""
    serial_name: str = ""
    """The display name: chosen by people, can change, not guaranteed unique."""
    serial_no: Digits = ""
    """A small number as a string, shown in Geelark's UI."""
    status: PhoneStatus = PhoneStatus.UNKNOWN
    """The power state at listing time."""
    remark: str = ""
    """Free text set in Geelark."""
    group_name: str = ""
    """Name of the phone's group (``group.name`` on the wire)."""
    tags: tuple[str, ...] = ()
    """Tag names (``tags[].name`` on the wire)."""
    os_version: str = ""
    """Android version (``equipmentInfo.osVersion`` on the wire)."""
    device_model: str = ""
    """Device model (``equipmentInfo.deviceModel`` on the wire)."""

    @model_validator(mode="before")
    @classmethod
    def _flatten_nested(cls, data: Any) -> Any:
        """Lift the few nested fields callers need (group, tags, equipmentInfo) to the top level."""
        if not isinstance(data, Mapping):
            return data
        flat = dict(data)
        group = flat.pop("group", None)
        if isinstance(group, Mapping) and "groupName" not in flat:
            flat["groupName"] = group.get("name") or ""
        tags = flat.get("tags")
        if isinstance(tags, list):
            flat["tags"] = tuple(
                tag.get("name", "") if isinstance(tag, Mapping) else str(tag) for tag in tags
            )
        equipment = flat.pop("equipmentInfo", None)
        if isinstance(equipment, Mapping):
            flat.setdefault("osVersion", equipment.get("osVersion") or "")
            flat.setdefault("deviceModel", equipment.get("deviceModel") or "")
        for key in ("serialName", "serialNo", "remark"):
            if flat.get(key) is None:
                flat.pop(key, None)
        return flat


class PhonePage(_Reply):
    """One page of ``/phone/list``."""

    total: int = 0
    """How many phones match the filter in the whole account."""
    page: int = 1
    """The page number, from 1."""
    page_size: int = 0
    """The page size the reply used."""
    items: tuple[Phone, ...] = ()
    """The phones on this page."""


class PhoneState(_Reply):
    """One phone's entry in a ``/phone/status`` reply."""

    id: Digits
    """The phone id."""
    serial_name: str = ""
    """The display name at the time of the call."""
    status: PhoneStatus
    """The power state."""


class StartResult(_Reply):
    """What a start call gave back for one phone."""

    id: Digits
    """The phone id."""
    url: str | None = None
    """Browser live-view link; absent when the phone was already starting or running."""
    charging_method: Digits | None = None
    """Geelark's billing method for this start (a number or a label, kept as text)."""
    already_started: bool = False
    """True when Geelark answered 43009 (already opened) or 43010 (starting)."""


class AdbEndpoint(_Reply):
    """How to reach one phone's ADB daemon; the password is a secret and never shown in reprs."""

    id: Digits
    """The phone id."""
    ip: str
    """Host of the ADB endpoint."""
    port: int
    """Port of the ADB endpoint (a string on the wire)."""
    password: SecretStr = Field(alias="pwd")
    """The ``glogin`` password (``pwd`` on the wire)."""

    @property
    def address(self) -> str:
        """``ip:port``, as ``adb connect`` and Appium's ``udid`` expect it."""
        return f"{self.ip}:{self.port}"


class ItemFailure(_Reply):
    """One entry of a batch reply's ``failDetails``: why Geelark refused this phone."""

    id: Digits = ""
    """The phone id."""
    code: int
    """Geelark's per-item code (42001 not found, 43004 expired, ...)."""
    msg: str = ""
    """Geelark's message."""


#: Code of the synthetic failure for an id Geelark left out of both result lists.
MISSING_FROM_REPLY = -1


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    """Per-phone outcome of one batch call: every requested id is in exactly one of the two maps."""

    succeeded: Mapping[str, T] = field(default_factory=dict)
    """Phones Geelark handled, with what it reported for each."""
    failed: Mapping[str, ItemFailure] = field(default_factory=dict)
    """Phones Geelark refused, with its per-item code and message."""
