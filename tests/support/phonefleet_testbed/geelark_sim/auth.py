"""Authentication of Open API calls in token mode and key mode (signed headers)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .codes import Code
from .config import SimulatorConfig


def geelark_signature(app_id: str, trace_id: str, ts: str, nonce: str, api_key: str) -> str:
    """Key-mode `sign` header: upper-case hex SHA-256 of appId + traceId + ts + nonce + apiKey."""
    plain = f"{app_id}{trace_id}{ts}{nonce}{api_key}"
    return hashlib.sha256(plain.encode("utf-8")).hexdigest().upper()


def check_auth(headers: Mapping[str, str], config: SimulatorConfig) -> Code:
    """The code a call with these headers earns before its body is looked at (Code.OK if allowed).

    A call with an `appId` header is judged in key mode, any other call in token mode. Key mode
    also requires `nonce` to be the first 6 characters of traceId and `ts` to be digits
    (milliseconds), as documented; `ts` is not compared with the clock.
    """
    trace_id = headers.get("traceId", "")
    if not trace_id:
        return Code.MISSING_TRACE_ID
    if "appId" in headers:
        return _check_key_mode(headers, trace_id, config)
    return _check_token_mode(headers, config)


def _check_token_mode(headers: Mapping[str, str], config: SimulatorConfig) -> Code:
    if config.token is None:
        return Code.BAD_SIGNATURE
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not hmac.compare_digest(token.encode(), config.token.encode()):
        return Code.BAD_SIGNATURE
    return Code.OK


def _check_key_mode(headers: Mapping[str, str], trace_id: str, config: SimulatorConfig) -> Code:
    if config.app_id is None or config.api_key is None:
        return Code.BAD_SIGNATURE
    app_id = headers.get("appId", "")
    ts = headers.get("ts", "")
    nonce = headers.get("nonce", "")
    sign = headers.get("sign", "")
    if app_id != config.app_id or not ts.isdigit() or nonce != trace_id[:6]:
        return Code.BAD_SIGNATURE
    expected = geelark_signature(app_id, trace_id, ts, nonce, config.api_key)
    if not hmac.compare_digest(sign.encode(), expected.encode()):
        return Code.BAD_SIGNATURE
    return Code.OK
