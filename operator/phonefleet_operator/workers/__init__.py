"""The operator's client of the workers' job endpoint (the only code that calls a worker)."""

from __future__ import annotations

from .client import Answer, WorkerClient, WorkerUnreachable

__all__ = ["Answer", "WorkerClient", "WorkerUnreachable"]
