"""Geelark reply codes the simulator answers, with the message it sends for each."""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Envelope and per-item codes, named after their meaning in `geelark-api.md`."""

    OK = 0
    MISSING_TRACE_ID = 40002
    BAD_SIGNATURE = 40003
    BAD_PARAMETERS = 40004
    RATE_LIMITED = 40007
    PAGING_OUT_OF_RANGE = 40008
    HOURLY_LIMIT = 40014
    PHONE_NOT_FOUND = 42001
    PHONE_NOT_RUNNING = 42002
    PHONE_EXPIRED = 43004
    ADB_NOT_ENABLED = 49001
    ADB_UNSUPPORTED = 49002
    INTERNAL_ERROR = 50000


MESSAGES: dict[int, str] = {
    Code.OK: "success",
    Code.MISSING_TRACE_ID: "traceId is required",
    Code.BAD_SIGNATURE: "signature verification failed",
    Code.BAD_PARAMETERS: "bad parameters",
    Code.RATE_LIMITED: "too many requests, try again next minute",
    Code.PAGING_OUT_OF_RANGE: "paging parameters out of range",
    Code.HOURLY_LIMIT: "hourly request limit reached, endpoint locked",
    Code.PHONE_NOT_FOUND: "env not found",
    Code.PHONE_NOT_RUNNING: "env is not running",
    Code.PHONE_EXPIRED: "env is expired",
    Code.ADB_NOT_ENABLED: "adb is not enabled",
    Code.ADB_UNSUPPORTED: "the device does not support adb",
    Code.INTERNAL_ERROR: "internal error",
}


def message_for(code: int) -> str:
    """The `msg` the simulator sends with `code` (a generic one for codes it has no text for)."""
    return MESSAGES.get(code, "error")
