"""What each per-item Geelark code means for the caller: the error it raises, or a success.

Batch calls answer ``code 0`` as a whole and list refused phones in ``failDetails``; this module
turns one such entry into the operator's own fault for the binding that asked about that phone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from phonefleet_operator.errors import (
    GeelarkRateLimited,
    GeelarkRequestError,
    GeelarkUnavailable,
    PhoneBusy,
    PhonefleetError,
    PhoneNotFound,
    PhoneNotReady,
)
from phonefleet_operator.geelark.models import MISSING_FROM_REPLY, ItemFailure

__all__ = [
    "ADB_NOT_ENABLED",
    "ALREADY_STARTING_CODES",
    "PHONE_NOT_RUNNING",
    "Operation",
    "PhoneBusy",
    "item_fault",
]

Operation = Literal["start", "stop", "status", "enable ADB", "disable ADB", "read ADB data"]

#: "The phone is not running" (``adb/getData`` per item; ``adb/setStatus`` refuses such phones).
PHONE_NOT_RUNNING: Final = 42002
#: "ADB is not enabled" (``adb/getData`` per item): the phone runs, its ADB is off or coming up.
ADB_NOT_ENABLED: Final = 49001
#: Start answers that mean "this phone is already on its way up": the start is done.
ALREADY_STARTING_CODES: Final = frozenset({43009, 43010})

#: Codes after which Geelark itself should recover: try again later.
_TRANSIENT_CODES: Final[dict[int, str]] = {
    40009: "the batch failed",
    43020: "the phone is temporarily unavailable",
    45002: "the phone's proxy is unavailable",
    47001: "the account hit its device concurrency limit",
    47002: "Geelark has no free device resources",
    50000: "Geelark failed internally",
    MISSING_FROM_REPLY: "Geelark left this phone out of its reply",
}
#: Codes that say "someone else is using the phone right now".
_BUSY_CODES: Final[dict[int, str]] = {
    43005: "it is running a task",
    43006: "it is being remotely controlled",
    43007: "it is in use by another user",
}
#: Geelark's daily limit on starts: asking again before tomorrow is pointless.
_DAILY_OPEN_LIMIT: Final = 43008
_DAILY_OPEN_LIMIT_DELAY_SECONDS: Final = 3600.0
_TRANSIENT_DELAY_SECONDS: Final = 30.0
_BUSY_DELAY_SECONDS: Final = 60.0
_NOT_RUNNING_DELAY_SECONDS: Final = 5.0
_ADB_OFF_DELAY_SECONDS: Final = 3.0


def item_fault(operation: Operation, failure: ItemFailure) -> PhonefleetError:
    """The fault raised to the caller whose phone Geelark refused in a batch reply."""
    code, phone = failure.code, failure.id
    said = f"{code}" + (f": {failure.msg}" if failure.msg else "")
    build = _BY_CODE.get(code)
    if build is not None:
        return build(operation, phone, said)
    if code in _BUSY_CODES:
        return PhoneBusy(
            f"Could not {operation} phone {phone}: {_BUSY_CODES[code]} ({said})",
            delay=_BUSY_DELAY_SECONDS,
        )
    if code in _TRANSIENT_CODES:
        return GeelarkUnavailable(
            f"Could not {operation} phone {phone}: {_TRANSIENT_CODES[code]} ({said})",
            delay=_TRANSIENT_DELAY_SECONDS,
        )
    return GeelarkRequestError(f"Geelark refused to {operation} phone {phone} ({said})", code=code)


def _not_found(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return PhoneNotFound(f"Geelark has no phone with id {phone} ({said})")


def _expired(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return GeelarkRequestError(
        f"Phone {phone} has expired in Geelark ({said}); renew it in Geelark to use it again",
        code=43004,
    )


def _not_running(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return PhoneNotReady(
        f"Could not {operation} on phone {phone}: it is not running ({said})",
        delay=_NOT_RUNNING_DELAY_SECONDS,
        code=PHONE_NOT_RUNNING,
    )


def _adb_off(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return PhoneNotReady(
        f"ADB is not enabled yet on phone {phone} ({said})",
        delay=_ADB_OFF_DELAY_SECONDS,
        code=ADB_NOT_ENABLED,
    )


def _no_adb(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return GeelarkRequestError(
        f"Phone {phone}: this phone model has no ADB ({said}; Android 10 images lack it)",
        code=49002,
    )


def _starting(code: int) -> Callable[[Operation, str, str], PhonefleetError]:
    def starting(operation: Operation, phone: str, said: str) -> PhonefleetError:
        return PhoneNotReady(
            f"Phone {phone} is already starting ({said})",
            delay=_NOT_RUNNING_DELAY_SECONDS,
            code=code,
        )

    return starting


def _daily_limit(operation: Operation, phone: str, said: str) -> PhonefleetError:
    return GeelarkRateLimited(
        f"Could not {operation} phone {phone}: the daily open limit is reached ({said})",
        code=_DAILY_OPEN_LIMIT,
        delay=_DAILY_OPEN_LIMIT_DELAY_SECONDS,
    )


_BY_CODE: Final[dict[int, Callable[[Operation, str, str], PhonefleetError]]] = {
    42001: _not_found,
    PHONE_NOT_RUNNING: _not_running,
    43004: _expired,
    43008: _daily_limit,
    43009: _starting(43009),
    43010: _starting(43010),
    ADB_NOT_ENABLED: _adb_off,
    49002: _no_adb,
}
