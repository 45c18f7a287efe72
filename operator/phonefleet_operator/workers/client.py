"""HTTP calls to a worker's job endpoint: deliver an attempt, read it back, validate, cancel.

Each call carries the binding's job token as a bearer token; the token is never logged and never
part of an error message. A worker that cannot be reached (refused, timed out, reset) raises
:class:`WorkerUnreachable`; every HTTP answer, error statuses and redirects included (a redirect
is never followed), comes back as an :class:`Answer` for the caller to decide. The protocol is
in docs/jobs.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from phonefleet_operator.errors import TemporaryFault
from phonefleet_operator.fence import Fence
from phonefleet_operator.telemetry.metrics import WORKER_REQUESTS

__all__ = ["MAX_ANSWER_BYTES", "Answer", "WorkerClient", "WorkerUnreachable"]

#: The largest answer read from a worker (its job endpoint takes 1 MiB requests at most too).
MAX_ANSWER_BYTES = 1 << 20


class WorkerUnreachable(TemporaryFault):
    """The worker's job endpoint did not answer."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """A worker's HTTP answer: its status and JSON body."""

    status: int
    body: dict[str, Any]


class WorkerClient:
    """One shared aiohttp session for every worker; a short timeout per call. Once ``fence``
    is closed (the replica lost the Lease), deliveries and cancels raise ReplicaStopping; the
    questions (tasks, validate, an attempt's state) still go, admission asks some of them."""

    def __init__(
        self, *, timeout_seconds: float = 10.0, limit: int = 100, fence: Fence | None = None
    ) -> None:
        self._fence = fence if fence is not None else Fence()
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        """Calls made so far (the bench reports requests per job)."""

    async def tasks(self, base: str, token: str) -> Answer:
        """``GET /v1/tasks``: the tasks the worker image registers."""
        return await self._call("GET", base, "/v1/tasks", token)

    async def validate(self, base: str, token: str, task: str, params: Mapping[str, Any]) -> Answer:
        """``POST /v1/validate``: whether the task exists and the params fit its schema."""
        return await self._call(
            "POST", base, "/v1/validate", token, {"task": task, "params": dict(params)}
        )

    async def deliver(self, base: str, token: str, attempt: Mapping[str, Any]) -> Answer:
        """``POST /v1/attempts``: hand over an attempt (idempotent per attempt id)."""
        self._fence.check("worker POST /v1/attempts")
        return await self._call("POST", base, "/v1/attempts", token, dict(attempt))

    async def attempt(self, base: str, token: str, attempt_id: str) -> Answer:
        """``GET /v1/attempts/{id}``: where the attempt stands on the worker."""
        return await self._call("GET", base, f"/v1/attempts/{attempt_id}", token)

    async def cancel(
        self, base: str, token: str, attempt_id: str, *, superseded: bool = False
    ) -> Answer:
        """``POST /v1/attempts/{id}/cancel``; ``superseded``: the attempt's pod is gone, and the
        worker that still has the attempt stops altogether."""
        self._fence.check("worker POST /v1/attempts/{id}/cancel")
        body = {"reason": "superseded"} if superseded else {}
        return await self._call("POST", base, f"/v1/attempts/{attempt_id}/cancel", token, body)

    async def close(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, base: str, path: str, token: str, body: Any = None
    ) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._limit)
            )
        self.requests += 1
        WORKER_REQUESTS.inc()  # before the connect: an attempt counts whether it is answered
        headers = {"Authorization": f"Bearer {token}"}
        try:
            # No redirects: a worker runs its tenant's image, and must not send the operator's
            # request (the attempt, the job's params) to an address of its choosing.
            async with self._session.request(
                method, base.rstrip("/") + path, json=body, headers=headers, allow_redirects=False
            ) as response:
                raw = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:  # its tenant's image: do not read on
                        raise WorkerUnreachable(
                            f"worker job endpoint {base} answered {method} {path} with more "
                            f"than {MAX_ANSWER_BYTES} bytes",
                            delay=5,
                        )
                try:
                    data = json.loads(raw)
                except ValueError:  # not JSON, or not UTF-8
                    data = None
                return Answer(response.status, data if isinstance(data, dict) else {})
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise WorkerUnreachable(
                f"worker job endpoint {base} did not answer {method} {path}: "
                f"{type(error).__name__}",
                delay=5,
            ) from None
