"""The job token of a binding whose ADB Secret was written without it (before PhoneJobs existed,
or under another job key): put in on demand, without switching ADB on again or touching the pod.

The operator never reads a binding's Secret, so it learns that the token is missing from the
worker: ``401`` (another token) or ``503`` (none) on the job endpoint. It then writes the Secret
again with the phone's current ADB data, read from Geelark without enabling ADB anew (the same ip,
port and password the worker already uses, so its session does not even reconnect), and the
binding's token. The kubelet updates the mounted Secret's files in place, and the worker reads
the token file at each request: no restart, and the job runs at the next pass after that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from phonefleet_operator.errors import PhoneNotReady
from phonefleet_operator.models import AdbConnection, PhoneBinding
from phonefleet_operator.render import adb_secret_name, build_adb_secret
from phonefleet_operator.services.jobs.tokens import JobTokens
from phonefleet_operator.services.ports import Kube, PhonePower

__all__ = ["TokenBackfill"]

log = logging.getLogger(__name__)


class TokenBackfill:
    """Writes a binding's job token into its ADB Secret, at most once per ``interval``."""

    def __init__(
        self,
        *,
        power: PhonePower,
        kube: Kube,
        tokens: JobTokens,
        clock: Callable[[], datetime],
        interval: timedelta = timedelta(minutes=2),
    ) -> None:
        self._power = power
        self._kube = kube
        self._tokens = tokens
        self._clock = clock
        # The kubelet takes up to a minute or two to update a mounted Secret: asking the worker
        # again meanwhile would write the same Secret on every pass.
        self._interval = interval
        self._written: dict[str, datetime] = {}  # binding uid -> when its Secret was written

    async def write(self, binding: PhoneBinding) -> bool:
        """Write the Secret again with the token, unless that was done within the interval;
        False when the phone's ADB has no endpoint now (its next provisioning brings the token)."""
        now = self._clock()
        last = self._written.get(binding.uid)
        if last is not None and now - last < self._interval:
            return True
        token = self._tokens.token_for(binding.namespace, binding.name, binding.uid)
        if not token:
            return False
        phone = binding.status.phone
        if phone is None or not phone.id or not phone.adb_provisioned_at:
            return False  # not provisioned for this power-on: its provisioning brings the token
        phone_id = phone.id
        try:
            endpoint = await self._power.adb_endpoint(phone_id)
        except PhoneNotReady:
            return False
        connection = AdbConnection(
            ip=endpoint.ip, port=str(endpoint.port), password=endpoint.password, phone_id=phone_id
        )
        await self._kube.put_secret(build_adb_secret(binding, connection, token))
        self._written[binding.uid] = now
        log.info(
            "Wrote the job token into Secret %s/%s of PhoneBinding %s (its worker had none)",
            binding.namespace,
            adb_secret_name(binding.name),
            binding.name,
        )
        return True

    def forget(self, uid: str) -> None:
        """The binding is gone."""
        self._written.pop(uid, None)
