"""Specification of how Geelark's replies are read into typed models."""

from __future__ import annotations

from typing import Any

import pytest

from phonefleet_operator.geelark import AdbEndpoint, Phone, PhoneStatus


def make_list_item(**overrides: Any) -> dict[str, Any]:
    """A ``/phone/list`` item shaped like Geelark's documentation."""
    item: dict[str, Any] = {
        "id": "526209711930868736",
        "serialName": "shop-7",
        "serialNo": "7",
        "group": {"id": "1", "name": "shops", "remark": ""},
        "remark": "front desk",
        "status": 0,
        "tags": [{"name": "eu"}, {"name": "tiktok"}],
        "equipmentInfo": {"osVersion": "Android 12", "deviceModel": "Pixel 6"},
        "proxy": {"type": "socks5"},
        "chargeMode": 0,
        "rpaStatus": 0,
    }
    item.update(overrides)
    return item


def test_a_list_item_reads_into_a_flat_phone() -> None:
    """Nested group, tags and equipmentInfo fields are lifted; unknown fields are ignored."""
    phone = Phone.model_validate(make_list_item())

    assert phone == Phone(
        id="526209711930868736",
        serial_name="shop-7",
        serial_no="7",
        status=PhoneStatus.RUNNING,
        remark="front desk",
        group_name="shops",
        tags=("eu", "tiktok"),
        os_version="Android 12",
        device_model="Pixel 6",
    )


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (0, PhoneStatus.RUNNING),
        (1, PhoneStatus.STARTING),
        (2, PhoneStatus.SHUT_DOWN),
        (3, PhoneStatus.EXPIRED),
        (9, PhoneStatus.UNKNOWN),
    ],
)
def test_status_codes_map_to_the_enum(wire: int, expected: PhoneStatus) -> None:
    """Geelark's status codes 0-3 have names; an unknown code does not fail the reply."""
    assert Phone.model_validate(make_list_item(status=wire)).status is expected


def test_numeric_ids_keep_every_digit() -> None:
    """An id sent as a JSON number becomes the same digit string."""
    assert Phone.model_validate(make_list_item(id=526209711930868736)).id == "526209711930868736"


def test_adb_endpoint_hides_its_password() -> None:
    """The ADB password is readable on purpose only: repr and str never show it."""
    endpoint = AdbEndpoint.model_validate(
        {"code": 0, "id": "1", "ip": "10.1.2.3", "port": "40001", "pwd": "s3cr3t"}
    )

    assert endpoint.port == 40001
    assert endpoint.address == "10.1.2.3:40001"
    assert endpoint.password.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(endpoint)
    assert "s3cr3t" not in str(endpoint)
