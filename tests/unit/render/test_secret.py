"""Specifications of the ADB Secret: its shape, and how a live Secret is compared with it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from phonefleet_operator.render import adb_secret_changed, build_adb_secret

from .factories import PASSWORD, PHONE_ID, assert_matches_golden, make_binding, make_connection


def as_live_data(string_data: dict[str, str]) -> dict[str, str]:
    """What the API server stores in ``data`` for a Secret written with ``stringData``."""
    return {key: base64.b64encode(value.encode()).decode() for key, value in string_data.items()}


def test_secret_matches_its_golden_file() -> None:
    """The Secret of a binding is golden/adb-secret.yaml."""
    assert_matches_golden("adb-secret", build_adb_secret(make_binding(), make_connection()))


def test_secret_holds_the_endpoint_under_the_documented_keys() -> None:
    """An Opaque Secret <binding>-adb with ip, port, password, phoneId and udid = ip:port."""
    secret = build_adb_secret(make_binding(), make_connection())

    assert secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == "checkout-phone-adb"
    assert secret["metadata"]["namespace"] == "team-a"
    assert secret["stringData"] == {
        "ip": "10.20.30.40",
        "port": "31001",
        "password": PASSWORD,
        "phoneId": PHONE_ID,
        "udid": "10.20.30.40:31001",
    }


def test_secret_is_owned_and_labelled_like_the_pod() -> None:
    """The binding controls the Secret; its labels name the app, binding and phone."""
    secret = build_adb_secret(make_binding(), make_connection())

    assert secret["metadata"]["ownerReferences"][0]["uid"] == make_binding().uid
    assert secret["metadata"]["ownerReferences"][0]["controller"] is True
    assert secret["metadata"]["labels"]["phonefleet.dev/binding"] == "checkout-phone"
    assert secret["metadata"]["labels"]["phonefleet.dev/phone-id"] == PHONE_ID
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "adb-secret"


def test_secret_rendering_is_pure() -> None:
    """Equal inputs give equal Secrets."""
    first = build_adb_secret(make_binding(), make_connection())

    assert build_adb_secret(make_binding(), make_connection()) == first


def test_an_unchanged_secret_is_left_alone() -> None:
    """A live Secret holding exactly the connection's values has not changed."""
    rendered = build_adb_secret(make_binding(), make_connection())

    assert not adb_secret_changed(as_live_data(rendered["stringData"]), make_connection())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"ip": "10.20.30.41"}, id="ip"),
        pytest.param({"port": "31002"}, id="port"),
        pytest.param({"password": "another"}, id="password"),
        pytest.param({"phone_id": "111"}, id="phone"),
    ],
)
def test_a_new_endpoint_changes_the_secret(change: dict[str, Any]) -> None:
    """Another ip, port, password or phone means the live Secret must be rewritten."""
    live = as_live_data(build_adb_secret(make_binding(), make_connection())["stringData"])

    assert adb_secret_changed(live, make_connection(**change))


@pytest.mark.parametrize(
    "live",
    [
        pytest.param(None, id="no-data"),
        pytest.param({}, id="empty"),
        pytest.param({"ip": "!!not base64!!"}, id="not-base64"),
        pytest.param({"ip": base64.b64encode(b"\xff\xfe").decode()}, id="not-utf8"),
    ],
)
def test_missing_or_garbled_data_counts_as_changed(live: dict[str, str] | None) -> None:
    """A Secret without data, or with data that does not decode, is rewritten."""
    assert adb_secret_changed(live, make_connection())


def test_an_extra_or_missing_key_counts_as_changed() -> None:
    """The live Secret must hold exactly the five keys."""
    values = build_adb_secret(make_binding(), make_connection())["stringData"]

    assert adb_secret_changed(as_live_data({**values, "extra": "x"}), make_connection())
    assert adb_secret_changed(
        as_live_data({k: v for k, v in values.items() if k != "udid"}), make_connection()
    )


def test_the_job_token_rides_in_the_same_secret_and_counts_as_a_change() -> None:
    """The binding's job token is one more key of the mounted Secret; a new token is a change."""
    secret = build_adb_secret(make_binding(), make_connection(), job_token="t0ken")
    live = as_live_data(secret["stringData"])

    assert secret["stringData"]["jobToken"] == "t0ken"
    assert not adb_secret_changed(live, make_connection(), job_token="t0ken")
    assert adb_secret_changed(live, make_connection(), job_token="another")
    assert "jobToken" not in build_adb_secret(make_binding(), make_connection())["stringData"]
