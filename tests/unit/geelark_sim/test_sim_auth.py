"""The simulator checks both of Geelark's authentication modes for real."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from phonefleet_testbed.geelark_sim import (
    GeelarkSimulator,
    OpenApiProbe,
    geelark_signature,
    key_headers,
    token_headers,
)
from phonefleet_testbed.geelark_sim.config import DEFAULT_API_KEY, DEFAULT_APP_ID
from phonefleet_testbed.geelark_sim.probe import AuthMode

STATUS = "phone/status"
BODY = {"ids": ["600000000000000001"]}


def test_signature_matches_the_documented_check_value() -> None:
    """The signing helper reproduces the example from Geelark's documentation."""
    sign = geelark_signature(
        app_id="eH6gQR4oHr3FsZpI36La01IW",
        trace_id="db6094ab-3797-4186-84d5-b0b58eebad56",
        ts="1716972892166",
        nonce="db6094",
        api_key="YjmFIUuq0oJgSDJ42fxLEb6R1qjjqf",
    )
    assert sign == "6280C080AF7C3CCE168F15C913E3444A00A618CB0E16038EED9811D6E3366BDD"


def test_documented_example_is_accepted_by_a_simulator_with_those_keys(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """A call signed exactly like the documented example passes key-mode authentication."""
    sim = make_sim(app_id="eH6gQR4oHr3FsZpI36La01IW", api_key="YjmFIUuq0oJgSDJ42fxLEb6R1qjjqf")
    headers = {
        "appId": "eH6gQR4oHr3FsZpI36La01IW",
        "traceId": "db6094ab-3797-4186-84d5-b0b58eebad56",
        "ts": "1716972892166",
        "nonce": "db6094",
        "sign": "6280C080AF7C3CCE168F15C913E3444A00A618CB0E16038EED9811D6E3366BDD",
    }
    reply = make_probe(sim).call(STATUS, BODY, headers=headers)
    assert reply["code"] == 0
    assert reply["traceId"] == "db6094ab-3797-4186-84d5-b0b58eebad56"


@pytest.mark.parametrize("mode", ["token", "key"])
def test_both_modes_are_accepted_with_the_right_credentials(
    api: OpenApiProbe, mode: AuthMode
) -> None:
    """A call authenticated in token mode or in key mode is answered with code 0."""
    assert api.call(STATUS, BODY, mode=mode)["code"] == 0


def test_wrong_token_is_refused_with_40003(api: OpenApiProbe) -> None:
    """A bearer token the account does not have earns code 40003."""
    assert api.call(STATUS, BODY, headers=token_headers("not-the-token"))["code"] == 40003


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"sign": "0" * 64}, id="wrong-sign"),
        pytest.param({"appId": "someone-else"}, id="wrong-app-id"),
        pytest.param({"nonce": "zzzzzz"}, id="nonce-not-trace-prefix"),
        pytest.param({"ts": "yesterday"}, id="ts-not-milliseconds"),
    ],
)
def test_tampered_key_mode_headers_are_refused_with_40003(
    api: OpenApiProbe, tamper: dict[str, str]
) -> None:
    """Key-mode headers whose signature does not verify earn code 40003."""
    headers = key_headers(DEFAULT_APP_ID, DEFAULT_API_KEY) | tamper
    assert api.call(STATUS, BODY, headers=headers)["code"] == 40003


def test_signature_made_with_another_api_key_is_refused(api: OpenApiProbe) -> None:
    """A sign computed with the wrong apiKey earns code 40003."""
    headers = key_headers(DEFAULT_APP_ID, "a-different-key")
    assert api.call(STATUS, BODY, headers=headers)["code"] == 40003


def test_call_without_credentials_is_refused_with_40003(api: OpenApiProbe) -> None:
    """A call carrying a traceId but no credentials earns code 40003."""
    assert api.call(STATUS, BODY, headers={"traceId": "t-1"})["code"] == 40003


@pytest.mark.parametrize("mode", ["token", "key"])
def test_missing_trace_id_is_refused_with_40002(api: OpenApiProbe, mode: AuthMode) -> None:
    """A call without a traceId header earns code 40002 in either mode."""
    headers = api.headers(mode)
    del headers["traceId"]
    assert api.call(STATUS, BODY, headers=headers)["code"] == 40002


def test_a_mode_that_is_not_configured_refuses_everything(
    make_sim: Callable[..., GeelarkSimulator], make_probe: Callable[..., OpenApiProbe]
) -> None:
    """With no token configured, token mode fails and key mode still works."""
    probe = make_probe(make_sim(token=None))
    assert probe.call(STATUS, BODY, mode="token")["code"] == 40003
    assert probe.call(STATUS, BODY, mode="key")["code"] == 0


def test_reply_echoes_the_trace_id(api: OpenApiProbe) -> None:
    """The reply envelope carries the traceId the request was sent with."""
    reply = api.call(STATUS, BODY, headers=token_headers("sim-token", trace_id="trace-42"))
    assert reply["traceId"] == "trace-42"
    assert set(reply) == {"traceId", "code", "msg", "data"}
