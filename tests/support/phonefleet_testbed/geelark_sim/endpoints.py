"""The Open API paths the simulator serves, and their short names such as "phone/list"."""

from __future__ import annotations

OPEN_API_PREFIX = "/open/v1/"

PHONE_LIST = "/open/v1/phone/list"
PHONE_STATUS = "/open/v1/phone/status"
PHONE_START = "/open/v1/phone/start"
PHONE_STOP = "/open/v1/phone/stop"
ADB_SET_STATUS = "/open/v1/adb/setStatus"
ADB_GET_DATA = "/open/v1/adb/getData"

ENDPOINTS = (PHONE_LIST, PHONE_STATUS, PHONE_START, PHONE_STOP, ADB_SET_STATUS, ADB_GET_DATA)


def normalize_endpoint(name: str) -> str:
    """The full path of "phone/list" or "/open/v1/phone/list"; ValueError if unknown."""
    path = name if name.startswith("/") else OPEN_API_PREFIX + name
    if path not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}")
    return path
