"""The simulator's mutable world, shared by every route: phones, settings, faults, limits, counters.

It lives on the server's event loop and is touched only from there, so it needs no locks.
"""

from __future__ import annotations

from aiohttp import web

from .config import RuntimeSettings, SimulatorConfig
from .counters import CallLog, RequestCounters
from .faults import FaultTable
from .limits import RateLimiter
from .state import Fleet, Phone, PhoneStatus


class SimulatorEngine:
    """Everything one simulated Geelark account holds."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.settings = RuntimeSettings.from_config(config)
        self.fleet = Fleet(adb_port_base=config.adb_port_base)
        self.fleet.seed(config.phones)
        self.faults = FaultTable()
        self.limiter = RateLimiter(lock_seconds=config.hourly_lock_seconds)
        self.counters = RequestCounters()
        self.calls = CallLog()

    def now(self) -> float:
        """The simulator clock."""
        return self.config.clock()

    def force_status(self, phone: Phone, status: PhoneStatus) -> None:
        """Put a phone into `status` out of band (admin API): no start or stop is counted."""
        now = self.now()
        if phone.status(now) is status:
            return
        phone.expired = status is PhoneStatus.EXPIRED
        if status in (PhoneStatus.STOPPED, PhoneStatus.EXPIRED):
            phone.power_off()
            return
        boot = self.settings.boot_seconds if status is PhoneStatus.STARTING else 0.0
        phone.power_off()
        phone.power_on(now, boot)


ENGINE_KEY = web.AppKey("engine", SimulatorEngine)
"""Where the aiohttp application keeps its engine."""
