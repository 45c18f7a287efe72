"""Running a simulator in-process: its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading

from phonefleet_testbed.lifecycle import StartStop

from .adb_endpoints import AdbEndpoints
from .admin import SimulatorAdmin
from .config import SimulatorConfig
from .server import SimulatorServer

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class GeelarkSimulator(StartStop):
    """A simulator served from a background thread.

        with GeelarkSimulator(SimulatorConfig(phones=3)) as sim:
            requests.post(sim.base_url + "/open/v1/phone/list", ...)
            sim.admin.running_phone_ids()

    `start()` returns once the port is bound; `stop()` returns once it is closed again.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._server = SimulatorServer(self.config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._admin: SimulatorAdmin | None = None
        self._adb: AdbEndpoints | None = None

    @property
    def base_url(self) -> str:
        """The URL to give a Geelark client, e.g. http://127.0.0.1:41234 (empty before start)."""
        return self._server.base_url

    @property
    def admin(self) -> SimulatorAdmin:
        """An admin client for this simulator."""
        if self._admin is None:
            if not self.base_url:
                raise RuntimeError("the simulator is not running")
            self._admin = SimulatorAdmin(self.base_url)
        return self._admin

    def start(self) -> str:
        """Start serving and return the base URL; raises whatever stopped the server binding."""
        if self._thread is not None:
            raise RuntimeError("the simulator was already started")
        self._thread = threading.Thread(target=self._serve, name="geelark-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError("the Geelark simulator did not start")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT)
            raise self._error
        if self.config.serve_adb:
            self._adb = AdbEndpoints(self._server.engine).start()
        return self.base_url

    @property
    def adb(self) -> AdbEndpoints:
        """The phones' ADB endpoints (``SimulatorConfig.serve_adb``), with their fault switches."""
        if self._adb is None:
            raise RuntimeError("the simulator serves no ADB endpoints (serve_adb=False)")
        return self._adb

    def stop(self) -> None:
        """Stop serving, close every connection and end the thread. Safe to call twice."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._adb is not None:
            self._adb.close()
            self._adb = None
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise TimeoutError("the Geelark simulator did not stop")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._server.start())
            except Exception as error:  # handed to start() in the caller's thread
                self._error = error
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            _cancel_remaining_tasks(loop)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
