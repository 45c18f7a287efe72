"""A synchronous client of the simulator's admin API, so tests never build its URLs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import requests

from .endpoints import normalize_endpoint


class SimulatorAdminError(RuntimeError):
    """The admin API refused a request."""


@dataclass(frozen=True)
class PowerChange:
    """One entry of the simulator's power journal: phone ``id`` went on or off."""

    seq: int
    id: str
    on: bool


@dataclass(frozen=True)
class ServedCall:
    """One entry of the simulator's call log: an Open API call it served at ``at`` (its own
    clock) to ``endpoint`` (the full path), naming phones ``ids``."""

    seq: int
    at: float
    endpoint: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class PhoneSnapshot:
    """A phone as the simulator sees it at one moment."""

    id: str
    serial_name: str
    serial_no: str
    status: int
    """Geelark status: 0 running, 1 starting, 2 stopped, 3 expired."""
    os_version: str
    adb_open: bool
    """ADB is enabled and usable."""
    adb_port: str
    adb_password: str
    running_since: float | None
    """Simulator-clock time of the current power-on; None while off."""
    start_count: int
    """Starts through the Open API (from off to on)."""
    stop_count: int
    """Stops through the Open API (from on to off)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhoneSnapshot:
        """Parse the admin API's phone object."""
        return cls(
            id=data["id"],
            serial_name=data["serialName"],
            serial_no=data["serialNo"],
            status=data["status"],
            os_version=data["osVersion"],
            adb_open=data["adbOpen"],
            adb_port=data["adbPort"],
            adb_password=data["adbPassword"],
            running_since=data["runningSince"],
            start_count=data["startCount"],
            stop_count=data["stopCount"],
        )


@dataclass(frozen=True)
class CounterSnapshot:
    """What the simulator counted since start or the last reset."""

    total: int
    """Open API calls received."""
    requests: dict[str, int]
    """Calls per endpoint path."""
    codes: dict[int, int]
    """HTTP 200 replies per envelope code."""
    codes_by_endpoint: dict[str, dict[int, int]]
    """HTTP 200 replies per endpoint path and envelope code."""
    http_statuses: dict[int, int]
    """Non-200 replies per HTTP status."""
    dropped: int
    """Connections closed without a reply (outage)."""
    max_per_minute: int
    """The most calls received in any rolling 60 s."""
    ids: dict[str, int] = field(default_factory=dict)
    """Phone ids named per endpoint path (batch calls that got past the rate limit)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CounterSnapshot:
        """Parse the admin API's counters object."""
        return cls(
            total=data["total"],
            requests=dict(data["requests"]),
            codes={int(code): n for code, n in data["codes"].items()},
            codes_by_endpoint={
                endpoint: {int(code): n for code, n in codes.items()}
                for endpoint, codes in data["codesByEndpoint"].items()
            },
            http_statuses={int(status): n for status, n in data["httpStatuses"].items()},
            dropped=data["dropped"],
            max_per_minute=data["maxPerMinute"],
            ids=dict(data.get("ids") or {}),
        )

    def calls(self, endpoint: str) -> int:
        """Calls to `endpoint` ("phone/list" or its full path)."""
        return self.requests.get(normalize_endpoint(endpoint), 0)

    def replies(self, code: int, endpoint: str | None = None) -> int:
        """Replies with envelope `code`, overall or for one endpoint."""
        if endpoint is None:
            return self.codes.get(code, 0)
        return self.codes_by_endpoint.get(normalize_endpoint(endpoint), {}).get(code, 0)


class PhoneFields(TypedDict, total=False):
    """What the admin API sets on a phone besides its serialName and id (None: leave it)."""

    status: int | None
    os_version: str | None
    remark: str | None
    group_name: str | None
    tags: list[str] | None


_PHONE_FIELD_NAMES = {
    "status": "status",
    "os_version": "osVersion",
    "remark": "remark",
    "group_name": "groupName",
    "tags": "tags",
}

_SETTING_NAMES = {
    "boot_seconds": "bootSeconds",
    "adb_enable_seconds": "adbEnableSeconds",
    "latency_ms": "latencyMs",
    "adb_switch_taken_when_off": "adbSwitchTakenWhenOff",
    "rate_limit_per_minute": "rateLimitPerMinute",
    "rate_limit_per_hour": "rateLimitPerHour",
}


class SimulatorAdmin:
    """Talks to `/_sim/` of a running simulator. Endpoints may be given as "phone/list"."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # the simulator is local: never go through a proxy

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()

    def is_healthy(self) -> bool:
        """Whether the simulator answers."""
        try:
            return bool(self._call("GET", "/health")["ok"])
        except requests.RequestException:
            return False

    def phones(self) -> list[PhoneSnapshot]:
        """Every phone, in creation order."""
        return [PhoneSnapshot.from_json(p) for p in self._call("GET", "/phones")["phones"]]

    def phone(self, phone_id: str) -> PhoneSnapshot:
        """One phone."""
        return PhoneSnapshot.from_json(self._call("GET", f"/phones/{phone_id}"))

    def create_phone(
        self, serial_name: str, *, phone_id: str | None = None, **fields: Unpack[PhoneFields]
    ) -> PhoneSnapshot:
        """Add a phone; without `phone_id` it gets the next stable id. Status 3: expired."""
        body = {"serialName": serial_name, "id": phone_id, **_phone_body(fields)}
        return PhoneSnapshot.from_json(self._call("POST", "/phones", _without_none(body)))

    def rename_phone(self, phone_id: str, serial_name: str) -> PhoneSnapshot:
        """Give a phone a new serialName (its id stays)."""
        return self.update_phone(phone_id, serial_name=serial_name)

    def update_phone(
        self, phone_id: str, *, serial_name: str | None = None, **fields: Unpack[PhoneFields]
    ) -> PhoneSnapshot:
        """Change a phone out of band, e.g. `status=2` as if it stopped by itself."""
        body = {"serialName": serial_name, **_phone_body(fields)}
        return PhoneSnapshot.from_json(
            self._call("PATCH", f"/phones/{phone_id}", _without_none(body))
        )

    def delete_phone(self, phone_id: str) -> None:
        """Remove a phone from the account."""
        self._call("DELETE", f"/phones/{phone_id}")

    def running_phone_ids(self) -> list[str]:
        """Ids of the phones that are on (starting or running)."""
        ids: list[str] = self._call("GET", "/running")["ids"]
        return ids

    def power_log(self, after: int = 0) -> list[PowerChange]:
        """Every power change numbered above ``after``, in the simulator's order."""
        entries = self._call("GET", "/power-log", params={"after": str(after)})["entries"]
        return [PowerChange(int(e["seq"]), str(e["id"]), bool(e["on"])) for e in entries]

    def served_calls(self, after: int = 0) -> list[ServedCall]:
        """Every Open API call served numbered above ``after``, in the order they were served."""
        entries = self._call("GET", "/calls", params={"after": str(after)})["entries"]
        return [
            ServedCall(int(e["seq"]), float(e["at"]), str(e["endpoint"]), tuple(e["ids"]))
            for e in entries
        ]

    def set_faults(
        self,
        endpoint: str = "*",
        *,
        outage: bool = False,
        http_status: int | None = None,
        code: int | None = None,
        latency_ms: float = 0.0,
        times: int | None = None,
        reply: dict[str, Any] | None = None,
    ) -> None:
        """Make calls to `endpoint` ("*" for all) misbehave; see `faults.FaultRule`.

        ``reply={"data": ...}`` answers code 0 with that data (null, a short page, ...).
        """
        body: dict[str, Any] = {
            "endpoint": endpoint,
            "outage": outage,
            "httpStatus": http_status,
            "code": code,
            "latencyMs": latency_ms,
            "times": times,
        }
        if reply is not None:
            body["reply"] = reply
        self._call("PUT", "/faults", body)

    def clear_faults(self, endpoint: str | None = None) -> None:
        """Lift the rule of one endpoint, or every rule."""
        params = None if endpoint is None else {"endpoint": endpoint}
        self._call("DELETE", "/faults", params=params)

    def faults(self) -> dict[str, Any]:
        """The rules in force, by endpoint path."""
        rules: dict[str, Any] = self._call("GET", "/faults")
        return rules

    def counters(self) -> CounterSnapshot:
        """What the simulator counted so far."""
        return CounterSnapshot.from_json(self._call("GET", "/counters"))

    def reset_counters(self, *, rate_limits: bool = True) -> None:
        """Zero the counters and, unless `rate_limits=False`, refill the account's budget."""
        self._call("POST", "/counters/reset", {"rateLimits": rate_limits})

    def settings(self) -> dict[str, Any]:
        """The runtime settings (camelCase, as the admin API names them)."""
        settings: dict[str, Any] = self._call("GET", "/settings")
        return settings

    def update_settings(self, **changes: float | None) -> dict[str, Any]:
        """Change runtime settings: boot_seconds, adb_enable_seconds, latency_ms,
        adb_switch_taken_when_off, rate_limit_per_minute, rate_limit_per_hour (None:
        unlimited)."""
        unknown = set(changes) - set(_SETTING_NAMES)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        body = {_SETTING_NAMES[name]: value for name, value in changes.items()}
        settings: dict[str, Any] = self._call("PATCH", "/settings", body)
        return settings

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/_sim{path}",
            json=body,
            params=params,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise SimulatorAdminError(
                f"{method} /_sim{path} answered {response.status_code}: {response.text}"
            )
        if response.status_code == 204:
            return None
        return response.json()


def _phone_body(fields: PhoneFields) -> dict[str, Any]:
    """The admin API's camelCase body of ``fields``."""
    return {_PHONE_FIELD_NAMES[name]: value for name, value in fields.items()}


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}
