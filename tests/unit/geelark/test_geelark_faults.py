"""Specification of what each per-item Geelark code means for the binding that asked."""

from __future__ import annotations

import pytest

from phonefleet_operator.errors import (
    GeelarkRateLimited,
    GeelarkRequestError,
    GeelarkUnavailable,
    PermanentFault,
    PhonefleetError,
    PhoneNotFound,
    PhoneNotReady,
    TemporaryFault,
)
from phonefleet_operator.geelark import ItemFailure, PhoneBusy, item_fault


@pytest.mark.parametrize(
    ("code", "fault_type", "words"),
    [
        (42001, PhoneNotFound, "no phone"),
        (43004, GeelarkRequestError, "expired"),
        (42002, PhoneNotReady, "not running"),
        (49001, PhoneNotReady, "ADB is not enabled"),
        (49002, GeelarkRequestError, "this phone model has no ADB"),
        (43005, PhoneBusy, "running a task"),
        (43006, PhoneBusy, "remotely controlled"),
        (43007, PhoneBusy, "another user"),
        (43008, GeelarkRateLimited, "daily open limit"),
        (43020, GeelarkUnavailable, "temporarily unavailable"),
        (45002, GeelarkUnavailable, "proxy"),
        (47001, GeelarkUnavailable, "concurrency"),
        (47002, GeelarkUnavailable, "resources"),
        (50000, GeelarkUnavailable, "internally"),
        (-1, GeelarkUnavailable, "left this phone out"),
        (40004, GeelarkRequestError, "refused"),
    ],
)
def test_each_item_code_maps_to_a_fault_that_names_the_phone(
    code: int, fault_type: type[PhonefleetError], words: str
) -> None:
    """Each documented per-item code becomes one fault type with a message naming the phone."""
    fault = item_fault("start", ItemFailure(id="600000000000000001", code=code, msg="m"))

    assert type(fault) is fault_type
    assert words in str(fault)
    assert "600000000000000001" in str(fault)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [(42001, True), (43004, True), (49002, True), (42002, False), (49001, False), (50000, False)],
)
def test_only_faults_the_user_must_fix_are_permanent(code: int, permanent: bool) -> None:
    """Not found, expired and no-ADB stop kopf's retries; everything else is retried."""
    fault = item_fault("read ADB data", ItemFailure(id="1", code=code))

    assert isinstance(fault, PermanentFault if permanent else TemporaryFault)


@pytest.mark.parametrize("code", [42002, 49001, 43009, 43010])
def test_a_phone_not_ready_says_which_code_geelark_gave(code: int) -> None:
    """ "Not running" (42002) and "ADB not enabled" (49001) mean different next steps to the ADB
    step (a status poll, or the switch again), so the fault carries Geelark's code."""
    fault = item_fault("read ADB data", ItemFailure(id="1", code=code))

    assert isinstance(fault, PhoneNotReady)
    assert fault.code == code
