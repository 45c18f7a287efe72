"""Specification of how requests are authenticated: both of Geelark's modes, header by header."""

from __future__ import annotations

import uuid

import pytest

from phonefleet_operator.geelark import build_auth_headers, sign_request
from phonefleet_operator.settings import GeelarkSettings

from .factories import make_key_settings, make_settings

DOC_APP_ID = "eH6gQR4oHr3FsZpI36La01IW"
DOC_TRACE_ID = "db6094ab-3797-4186-84d5-b0b58eebad56"
DOC_TS = "1716972892166"
DOC_API_KEY = "YjmFIUuq0oJgSDJ42fxLEb6R1qjjqf"
DOC_SIGN = "6280C080AF7C3CCE168F15C913E3444A00A618CB0E16038EED9811D6E3366BDD"


def test_signature_matches_the_documented_check_value() -> None:
    """The sign of Geelark's documented example is the documented upper-case hex digest."""
    assert sign_request(DOC_APP_ID, DOC_TRACE_ID, DOC_TS, "db6094", DOC_API_KEY) == DOC_SIGN


def test_key_mode_headers_reproduce_the_documented_example() -> None:
    """Key mode sends appId, traceId, ts in ms, nonce = traceId[:6] and the documented sign."""
    settings = make_settings(token=None, app_id=DOC_APP_ID, api_key=DOC_API_KEY)

    headers = build_auth_headers(settings, trace_id=DOC_TRACE_ID, now_ms=int(DOC_TS))

    assert headers == {
        "appId": DOC_APP_ID,
        "traceId": DOC_TRACE_ID,
        "ts": DOC_TS,
        "nonce": "db6094",
        "sign": DOC_SIGN,
    }


def test_token_mode_headers_are_trace_id_and_bearer_token() -> None:
    """Token mode sends only traceId and ``Authorization: Bearer <token>``."""
    settings = make_settings(token="tok-123")
    trace_id = str(uuid.uuid4())

    headers = build_auth_headers(settings, trace_id=trace_id, now_ms=0)

    assert headers == {"traceId": trace_id, "Authorization": "Bearer tok-123"}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (make_settings(), {"traceId", "Authorization"}),
        (make_key_settings(), {"appId", "traceId", "ts", "nonce", "sign"}),
    ],
    ids=["token", "key"],
)
def test_settings_select_exactly_one_auth_mode(
    settings: GeelarkSettings, expected: set[str]
) -> None:
    """A token selects token mode; appId with apiKey selects key mode; never both header sets."""
    assert set(build_auth_headers(settings, trace_id="abcdef-1", now_ms=1)) == expected
