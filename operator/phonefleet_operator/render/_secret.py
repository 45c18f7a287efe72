"""The ADB Secret of a binding: its phone's endpoint and password, mounted by its pod only."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ..constants import (
    ADB_KEY_IP,
    ADB_KEY_PASSWORD,
    ADB_KEY_PHONE_ID,
    ADB_KEY_PORT,
    ADB_KEY_UDID,
    COMPONENT_ADB,
    JOB_TOKEN_KEY,
)
from ..models import AdbConnection, PhoneBinding
from ._labels import object_labels
from ._names import adb_secret_name, owner_reference

__all__ = ["adb_secret_changed", "build_adb_secret"]


def build_adb_secret(
    binding: PhoneBinding, conn: AdbConnection, job_token: str = ""
) -> dict[str, Any]:
    """The Opaque Secret the worker pod mounts: ip, port, password, phoneId and udid (``ip:port``),
    and the binding's job token (``jobToken``, when given) that authenticates the operator's calls
    to the worker's job endpoint (docs/jobs.md).

    Owned by the binding, so it goes when the binding goes. Values are in ``stringData``; the API
    server stores them base64-encoded in ``data``, which :func:`adb_secret_changed` reads.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": adb_secret_name(binding.name),
            "namespace": binding.namespace,
            "labels": object_labels(binding, component=COMPONENT_ADB, phone_id=conn.phone_id),
            "ownerReferences": [owner_reference(binding)],
        },
        "stringData": _secret_values(conn, job_token),
    }


def adb_secret_changed(
    live_secret_data_b64: Mapping[str, str] | None, conn: AdbConnection, job_token: str = ""
) -> bool:
    """Whether a live Secret's ``data`` (base64 values) holds anything but ``conn`` (and token)."""
    if not live_secret_data_b64:
        return True
    try:
        live = {
            key: base64.b64decode(value, validate=True).decode()
            for key, value in live_secret_data_b64.items()
        }
    except (binascii.Error, UnicodeDecodeError, TypeError):
        return True
    return live != _secret_values(conn, job_token)


def _secret_values(conn: AdbConnection, job_token: str) -> dict[str, str]:
    values = {
        ADB_KEY_IP: conn.ip,
        ADB_KEY_PORT: conn.port,
        ADB_KEY_PASSWORD: conn.password.get_secret_value(),
        ADB_KEY_PHONE_ID: conn.phone_id,
        ADB_KEY_UDID: conn.udid,
    }
    if job_token:
        values[JOB_TOKEN_KEY] = job_token
    return values
