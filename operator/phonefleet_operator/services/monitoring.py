"""The operator's monitoring at run time: the /metrics endpoint and the periodic billing check.

Off unless ``PHONEFLEET_METRICS_PORT`` is set (manifests/default sets it): the billing check
lists the account's phones (ceil(N/100) Geelark calls every ``billing_check_seconds``), which a
developer's operator or a benchmark should not pay for unasked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import kopf

from phonefleet_operator import telemetry
from phonefleet_operator.errors import PhonefleetError
from phonefleet_operator.services.billing import (
    CLAIMING_PHASES,
    HOLDING_PHASES,
    LeakTracker,
    how_to_stop,
    unbound_running,
)
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings

__all__ = ["Monitoring", "stop_monitoring"]

log = logging.getLogger(__name__)


@dataclass
class Monitoring:
    """The metrics server and the billing check of one operator run."""

    runtime: Runtime
    server: telemetry.MetricsServer
    leaks: LeakTracker = field(default_factory=LeakTracker)
    _task: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls, settings: OperatorSettings, geelark: GeelarkSettings, runtime: Runtime
    ) -> Monitoring | None:
        """Serve metrics and start the billing check; None when metrics are off."""
        if settings.metrics_port is None:
            return None
        try:
            server = telemetry.serve(
                settings.metrics_port,
                settings.metrics_addr,
                geelark_requests_per_minute=geelark.requests_per_minute,
            )
        except OSError as error:  # the port is taken: retrying would not free it
            raise kopf.PermanentError(
                f"Cannot serve metrics on {settings.metrics_addr}:{settings.metrics_port} "
                f"(PHONEFLEET_METRICS_PORT): {error}"
            ) from None
        monitoring = cls(runtime, server)
        monitoring._task = asyncio.create_task(monitoring._check_billing(), name="billing-check")
        return monitoring

    async def check_billing_once(self) -> int:
        """List the phones, count the billed ones no live binding holds; return how many."""
        inventory = self.runtime.inventory
        await inventory.refresh()
        claims = self.runtime.observed_claims
        # Claimed by a binding whose phase runs its phone (a Suspended one's phone is billed
        # with nothing meant to run on it), or named by one (services/billing.py).
        running = telemetry.bindings.uids(CLAIMING_PHASES)
        held = {
            phone_id for phone_id in inventory.cached() if claims.holder_uid(phone_id) in running
        } | telemetry.bindings.phone_ids(HOLDING_PHASES)
        found = self.leaks.update(unbound_running(inventory.cached().values(), held), time.time())
        telemetry.UNBOUND_RUNNING_PHONES.set(len(found))
        telemetry.UNBOUND_RUNNING_LONGEST.set(max((f.seen_for_seconds for f in found), default=0))
        if found:
            ids = [f.phone.id for f in found]
            log.warning(
                "Found %d phones running in Geelark that no PhoneBinding holds: %s. %s",
                len(found),
                ", ".join(ids),
                how_to_stop(ids),
            )
        return len(found)

    async def _check_billing(self) -> None:
        while True:
            try:
                await self.check_billing_once()
            except PhonefleetError as error:
                log.warning("Could not check for phones billed with no binding: %s", error)
            await asyncio.sleep(self.runtime.settings.billing_check_seconds)

    async def close(self) -> None:
        """Stop the billing check and the server."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.server.stop()


async def stop_monitoring(monitoring: Monitoring | None) -> None:
    """``close`` when there is something to close (the clean-up handler's one line)."""
    if monitoring is not None:
        await monitoring.close()
