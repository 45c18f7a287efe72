"""The only code that calls Geelark: HTTP client, phone inventory, batched phone gateway.

Build one of each at start-up and share them across every binding::

    client = GeelarkClient(settings.geelark)          # pace, retries, auth
    inventory = PhoneInventory(client, settings.geelark)  # resolve(ref) -> Phone
    phones = PhoneGateway(client, settings.geelark)   # start/stop/status/ADB, batched

On shutdown: ``await phones.aclose()`` then ``await client.close()``.
"""

from phonefleet_operator.geelark.client import (
    MAX_IDS_PER_ADB,
    MAX_IDS_PER_CALL,
    MAX_IDS_PER_START,
    MAX_PAGE_SIZE,
    GeelarkClient,
    build_auth_headers,
    build_rate_limiter,
    sign_request,
)
from phonefleet_operator.geelark.faults import (
    ADB_NOT_ENABLED,
    PHONE_NOT_RUNNING,
    PhoneBusy,
    item_fault,
)
from phonefleet_operator.geelark.gateway import PhoneApi, PhoneGateway
from phonefleet_operator.geelark.inventory import PhoneInventory, PhoneLister, looks_like_phone_id
from phonefleet_operator.geelark.models import (
    AdbEndpoint,
    BatchResult,
    ItemFailure,
    Phone,
    PhonePage,
    PhoneState,
    PhoneStatus,
    StartResult,
)
from phonefleet_operator.geelark.pace import CallPace

__all__ = [
    "ADB_NOT_ENABLED",
    "MAX_IDS_PER_ADB",
    "MAX_IDS_PER_CALL",
    "MAX_IDS_PER_START",
    "MAX_PAGE_SIZE",
    "PHONE_NOT_RUNNING",
    "AdbEndpoint",
    "BatchResult",
    "CallPace",
    "GeelarkClient",
    "ItemFailure",
    "Phone",
    "PhoneApi",
    "PhoneBusy",
    "PhoneGateway",
    "PhoneInventory",
    "PhoneLister",
    "PhonePage",
    "PhoneState",
    "PhoneStatus",
    "StartResult",
    "build_auth_headers",
    "build_rate_limiter",
    "item_fault",
    "looks_like_phone_id",
    "sign_request",
]
