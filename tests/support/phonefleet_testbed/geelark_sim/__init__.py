"""A Geelark Open API simulator: a real HTTP server following `shared/geelark-api.md`.

    from phonefleet_testbed.geelark_sim import GeelarkSimulator, SimulatorConfig

    with GeelarkSimulator(SimulatorConfig(phones=5)) as sim:
        ...  # point a Geelark client at sim.base_url; steer it with sim.admin

Run as a process with `python -m phonefleet_testbed.geelark_sim --help`.
"""

from .admin import (
    CounterSnapshot,
    PhoneSnapshot,
    PowerChange,
    ServedCall,
    SimulatorAdmin,
    SimulatorAdminError,
)
from .auth import geelark_signature
from .clock import Clock, ManualClock
from .codes import Code
from .config import DEFAULT_API_KEY, DEFAULT_APP_ID, DEFAULT_TOKEN, SimulatorConfig
from .faults import FaultRule
from .probe import OpenApiProbe, key_headers, token_headers
from .runner import GeelarkSimulator
from .server import SimulatorServer
from .state import PhoneStatus, seed_id, seed_name

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_APP_ID",
    "DEFAULT_TOKEN",
    "Clock",
    "Code",
    "CounterSnapshot",
    "FaultRule",
    "GeelarkSimulator",
    "ManualClock",
    "OpenApiProbe",
    "PhoneSnapshot",
    "PhoneStatus",
    "PowerChange",
    "ServedCall",
    "SimulatorAdmin",
    "SimulatorAdminError",
    "SimulatorConfig",
    "SimulatorServer",
    "geelark_signature",
    "key_headers",
    "seed_id",
    "seed_name",
    "token_headers",
]
