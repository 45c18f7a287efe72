"""What the services need from the outside world, as protocols: real gateways or in-memory fakes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from phonefleet_operator.geelark import AdbEndpoint, Phone, PhoneStatus, StartResult

__all__ = ["Kube", "PhoneDirectory", "PhonePower"]

Obj = dict[str, Any]


class PhoneDirectory(Protocol):
    """Resolves what a user wrote (an id or a serialName) to one Geelark phone."""

    async def resolve(self, reference: str) -> Phone:
        """The phone, or PhoneNotFound / AmbiguousPhone / GeelarkUnavailable."""
        ...


class PhonePower(Protocol):
    """Per-phone power and ADB operations (batched across bindings behind the scenes)."""

    async def status(self, phone_id: str) -> PhoneStatus:
        """The phone's current status code."""
        ...

    async def start(self, phone_id: str) -> StartResult:
        """Start the phone (idempotent); the result carries the live-view URL."""
        ...

    async def stop(self, phone_id: str) -> None:
        """Stop the phone (stopping a stopped phone is harmless)."""
        ...

    async def enable_adb(self, phone_id: str) -> None:
        """Turn ADB on for a running phone."""
        ...

    async def adb_endpoint(self, phone_id: str) -> AdbEndpoint:
        """ip, port and password of the phone's ADB endpoint (PhoneNotReady until it is up)."""
        ...

    def poll_interval(self, phones: int) -> float:
        """Shortest interval at which ``phones`` phones can each be polled within the budget."""
        ...


class Kube(Protocol):
    """The Kubernetes objects the services read and write."""

    async def get_binding(self, namespace: str, name: str) -> Obj | None: ...
    async def patch_binding_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...
    async def get_claim(self, phone_id: str) -> Obj | None: ...
    async def create_claim(self, claim: Obj) -> bool: ...
    async def delete_claim(self, phone_id: str, uid: str) -> bool: ...
    async def list_claims(self) -> list[Obj]: ...
    async def drop_claim_finalizer(self, claim: Mapping[str, Any]) -> bool: ...
    async def get_pod(self, namespace: str, name: str) -> Obj | None: ...
    async def list_pods(self, label_selector: str) -> list[Obj]: ...
    async def create_pod(self, pod: Obj) -> bool: ...
    async def delete_pod(self, namespace: str, name: str, uid: str | None = None) -> bool: ...
    async def put_secret(self, secret: Obj) -> None: ...
    async def delete_secret(self, namespace: str, name: str) -> None: ...
