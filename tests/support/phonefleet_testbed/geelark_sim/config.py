"""Configuration of one simulator: its start-up config and the settings changeable live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .clock import Clock

DEFAULT_TOKEN = "sim-token"
DEFAULT_APP_ID = "sim-app-id"
DEFAULT_API_KEY = "sim-api-key"


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator is started with; the defaults suit fast unit tests."""

    phones: int = 0
    """How many phones to seed, named phone-001, phone-002, ... with stable ids."""

    token: str | None = DEFAULT_TOKEN
    """Bearer token accepted in token mode; None turns token mode off."""

    app_id: str | None = DEFAULT_APP_ID
    """appId accepted in key mode; key mode is on only when both app_id and api_key are set."""

    api_key: str | None = DEFAULT_API_KEY
    """apiKey that key-mode signatures are checked against."""

    host: str = "127.0.0.1"
    """Address the server binds."""

    port: int = 0
    """Port the server binds; 0 picks a free one."""

    boot_seconds: float = 1.0
    """How long a started phone stays in status 1 (starting) before it reports 0 (running)."""

    adb_enable_seconds: float = 0.0
    """How long after `adb/setStatus open=true` ADB becomes usable (Geelark: about 3 s)."""

    latency_ms: float = 0.0
    """Delay added to every Open API call before it is answered."""

    adb_switch_taken_when_off: bool = False
    """How `adb/setStatus` treats a phone that does not run. Geelark's documentation only says
    the phone must be started first; False (the default) refuses it with item code 42002, True
    answers code 0 and switches nothing (the other reading, for tests of clients that must
    survive it)."""

    rate_limit_per_minute: int | None = 200
    """Calls the account may make in any rolling 60 s before code 40007; None means unlimited."""

    rate_limit_per_hour: int | None = 24_000
    """Calls the account may make in any rolling hour before code 40014; None means unlimited."""

    hourly_lock_seconds: float = 7_200.0
    """How long the account stays locked (code 40014) after it hit the hourly limit."""

    adb_host: str = "127.0.0.1"
    """The `ip` that `adb/getData` reports for every phone."""

    adb_port_base: int = 40_000
    """Phone number n (its serialNo) reports ADB port `adb_port_base + n`."""

    serve_adb: bool = False
    """Serve each phone's ADB endpoint (a fake adbd on `adb_host`), for workers that really run."""

    clock: Clock = field(default=time.monotonic, compare=False)
    """The simulator's time source; tests pass a `ManualClock` to step through delays."""

    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    """How a call's latency is waited out (in the simulator's loop); tests pass a gate."""


@dataclass
class RuntimeSettings:
    """The part of the config that the admin API can change while the simulator runs."""

    boot_seconds: float
    """See `SimulatorConfig.boot_seconds`; applies to phones started afterwards."""

    adb_enable_seconds: float
    """See `SimulatorConfig.adb_enable_seconds`; applies to ADB enabled afterwards."""

    latency_ms: float
    """See `SimulatorConfig.latency_ms`; fault rules may add more per endpoint."""

    adb_switch_taken_when_off: bool
    """See `SimulatorConfig.adb_switch_taken_when_off`."""

    rate_limit_per_minute: int | None
    """See `SimulatorConfig.rate_limit_per_minute`."""

    rate_limit_per_hour: int | None
    """See `SimulatorConfig.rate_limit_per_hour`."""

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> RuntimeSettings:
        """The settings a simulator starts with."""
        return cls(
            boot_seconds=config.boot_seconds,
            adb_enable_seconds=config.adb_enable_seconds,
            latency_ms=config.latency_ms,
            adb_switch_taken_when_off=config.adb_switch_taken_when_off,
            rate_limit_per_minute=config.rate_limit_per_minute,
            rate_limit_per_hour=config.rate_limit_per_hour,
        )

    def to_json(self) -> dict[str, float | int | bool | None]:
        """The settings as the admin API shows them."""
        return {
            "bootSeconds": self.boot_seconds,
            "adbEnableSeconds": self.adb_enable_seconds,
            "latencyMs": self.latency_ms,
            "adbSwitchTakenWhenOff": self.adb_switch_taken_when_off,
            "rateLimitPerMinute": self.rate_limit_per_minute,
            "rateLimitPerHour": self.rate_limit_per_hour,
        }
