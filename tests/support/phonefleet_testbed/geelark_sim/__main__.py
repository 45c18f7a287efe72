"""The simulator as a process: `python -m phonefleet_testbed.geelark_sim --phones 10 --port 8089`.

Prints one line, the base URL, once the port is bound, and shuts down cleanly on SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from .config import DEFAULT_API_KEY, DEFAULT_APP_ID, DEFAULT_TOKEN, SimulatorConfig
from .server import SimulatorServer


def parse_args(argv: Sequence[str] | None = None) -> SimulatorConfig:
    """The config the command line asks for."""
    parser = argparse.ArgumentParser(
        prog="python -m phonefleet_testbed.geelark_sim",
        description="Serve a simulated Geelark Open API (and its admin API under /_sim/).",
    )
    parser.add_argument("--phones", type=int, default=10, help="phones to seed (phone-001, ...)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token for token mode")
    parser.add_argument("--app-id", default=DEFAULT_APP_ID, help="appId for key mode")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="apiKey for key mode")
    parser.add_argument("--boot-seconds", type=float, default=1.0, help="starting -> running")
    parser.add_argument("--adb-enable-seconds", type=float, default=0.0, help="ADB on -> usable")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to each call")
    parser.add_argument(
        "--rate-limit", type=int, default=200, help="calls per rolling minute (0: unlimited)"
    )
    parser.add_argument(
        "--hourly-limit", type=int, default=24_000, help="calls per rolling hour (0: unlimited)"
    )
    args = parser.parse_args(argv)
    return SimulatorConfig(
        phones=args.phones,
        host=args.host,
        port=args.port,
        token=args.token or None,
        app_id=args.app_id or None,
        api_key=args.api_key or None,
        boot_seconds=args.boot_seconds,
        adb_enable_seconds=args.adb_enable_seconds,
        latency_ms=args.latency_ms,
        rate_limit_per_minute=args.rate_limit or None,
        rate_limit_per_hour=args.hourly_limit or None,
    )


async def serve(config: SimulatorConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = SimulatorServer(config)
    print(await server.start(), flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m phonefleet_testbed.geelark_sim`."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
