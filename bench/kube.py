"""A small async Kubernetes API client for the bench: parallel creates, lists and watches.

The bench needs a client that is not itself the bottleneck: aiohttp over the admin client
certificate, JSON in and out, no model classes. The operator keeps using its own client.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["WRITE_VERBS", "ApiError", "KubeApi", "WatchEvent", "run_parallel", "writes_in"]

Obj = dict[str, Any]


class ApiError(RuntimeError):
    """The API server answered a request with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {text[:300]}")
        self.status = status


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch and the monotonic time the bench received it."""

    type: str
    object: Obj
    received: float


WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})


def writes_in(counts: dict[str, int]) -> int:
    """Every client's writes in ``KubeApi.request_counts`` (a failed one once, under its verb),
    but the components' lease renewals (``PUT leases``: a clock, not work)."""
    return sum(
        count
        for key, count in counts.items()
        if key.split(" ", 1)[0] in WRITE_VERBS and key != "PUT leases"
    )


class KubeApi:
    """JSON requests to one API server with a client certificate; use ``async with``."""

    def __init__(self, server: str, pki_dir: Path, *, connections: int = 128) -> None:
        self._server = server.rstrip("/")
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        self._ssl = context
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeApi:
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open HTTP session."""
        if self._session is None:
            raise RuntimeError("KubeApi is used outside `async with`")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        params: dict[str, str] | None = None,
        ok: Iterable[int] = (200, 201, 202),
    ) -> Obj:
        """Send one request and return the JSON reply; other statuses than ``ok`` raise."""
        async with self.session.request(
            method, self._server + path, json=body, params=params
        ) as response:
            text = await response.text()
            if response.status not in set(ok):
                raise ApiError(method, path, response.status, text)
            reply: Obj = json.loads(text) if text else {}
            return reply

    async def create(self, path: str, body: Obj) -> Obj:
        """POST ``body`` to the collection ``path``."""
        return await self.request("POST", path, body, ok=(201, 200))

    async def list(self, path: str, params: dict[str, str] | None = None) -> Obj:
        """GET a collection (every page)."""
        query = dict(params or {})
        query.setdefault("limit", "500")
        items: list[Obj] = []
        while True:
            reply = await self.request("GET", path, params=query)
            items.extend(reply.get("items", []))
            token = reply.get("metadata", {}).get("continue")
            if not token:
                reply["items"] = items
                return reply
            query["continue"] = token

    async def create_namespace(self, name: str, wait_seconds: float = 60.0) -> None:
        """Create a namespace and wait for its default ServiceAccount (pods need it)."""
        await self.create("/api/v1/namespaces", {"metadata": {"name": name}})
        path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                await self.request("GET", path)
            except ApiError as error:
                if error.status != 404 or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
            else:
                return

    async def request_counts(self) -> dict[str, int]:
        """The API server's own count of requests so far, by "VERB resource[/subresource]"."""
        async with self.session.get(self._server + "/metrics") as response:
            text = await response.text()
        counts: dict[str, int] = {}
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
            labels = dict(part.split("=", 1) for part in labels_text.split(",") if "=" in part)
            label = {k: v.strip('"') for k, v in labels.items()}
            if label.get("resource") in (None, ""):
                continue
            key = f"{label.get('verb')} {label.get('resource')}"
            if label.get("subresource"):
                key += f"/{label['subresource']}"
            if label.get("verb") in WRITE_VERBS and label.get("code", "").startswith(("4", "5")):
                # Failed writes (a create answered 409, a patch refused) under their own key.
                failed = f"failed {key} {label['code']}"
                counts[failed] = counts.get(failed, 0) + int(float(value))
            counts[key] = counts.get(key, 0) + int(float(value))
        return counts

    async def delete_collection(self, path: str, params: dict[str, str] | None = None) -> None:
        """DELETE every object of a collection at once (no grace period)."""
        await self.request(
            "DELETE",
            path,
            {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            params=params,
            ok=(200, 202),
        )

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[WatchEvent]:
        """The events of ``path`` after ``resource_version``, re-established when it ends."""
        version = resource_version
        while True:
            params = {
                "watch": "1",
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "3600",
            }
            timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
            async with self.session.get(
                self._server + path, params=params, timeout=timeout
            ) as response:
                if response.status != 200:
                    raise ApiError("WATCH", path, response.status, await response.text())
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    received = time.monotonic()
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise ApiError("WATCH", path, int(obj.get("code", 0)), json.dumps(obj))
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") == "BOOKMARK":
                        continue
                    yield WatchEvent(event["type"], obj, received)


async def run_parallel(
    jobs: Iterable[Callable[[], Awaitable[None]]], concurrency: int
) -> list[BaseException]:
    """Run the jobs with at most ``concurrency`` at a time; return the errors they raised."""
    queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    errors: list[BaseException] = []

    async def worker() -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await job()
            except Exception as error:  # collected: the caller decides
                errors.append(error)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return errors
