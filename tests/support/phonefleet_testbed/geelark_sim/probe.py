"""Raw, hand-signed calls to the simulated Open API, for testing the simulator itself.

This is an instrument, not a Geelark client: no retries, no rate limiting, no models. The
operator's `geelark/` package is the one client; test it against the simulator with that.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import requests

from .auth import geelark_signature
from .config import DEFAULT_API_KEY, DEFAULT_APP_ID, DEFAULT_TOKEN
from .endpoints import normalize_endpoint

AuthMode = Literal["token", "key", "none"]


def token_headers(token: str, trace_id: str | None = None) -> dict[str, str]:
    """Token-mode headers: traceId and Authorization: Bearer."""
    return {"traceId": trace_id or str(uuid.uuid4()), "Authorization": f"Bearer {token}"}


def key_headers(
    app_id: str, api_key: str, trace_id: str | None = None, ts: str | None = None
) -> dict[str, str]:
    """Key-mode headers: appId, traceId, ts (ms), nonce (traceId[:6]) and sign."""
    trace_id = trace_id or str(uuid.uuid4())
    ts = ts or str(int(time.time() * 1000))
    nonce = trace_id[:6]
    return {
        "appId": app_id,
        "traceId": trace_id,
        "ts": ts,
        "nonce": nonce,
        "sign": geelark_signature(app_id, trace_id, ts, nonce, api_key),
    }


class OpenApiProbe:
    """Posts JSON to `/open/v1/...` of a simulator with the chosen authentication."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str = DEFAULT_TOKEN,
        app_id: str = DEFAULT_APP_ID,
        api_key: str = DEFAULT_API_KEY,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.app_id = app_id
        self.api_key = api_key
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # the simulator is local: never go through a proxy

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    def headers(self, mode: AuthMode = "token") -> dict[str, str]:
        """Fresh authentication headers for one call."""
        if mode == "token":
            return token_headers(self.token)
        if mode == "key":
            return key_headers(self.app_id, self.api_key)
        return {}

    def post(
        self,
        endpoint: str,
        body: Any = None,
        *,
        mode: AuthMode = "token",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One raw call; `headers` replace the authentication headers `mode` would send."""
        return self.session.post(
            self.base_url + normalize_endpoint(endpoint),
            json={} if body is None else body,
            headers=self.headers(mode) if headers is None else headers,
            timeout=self.timeout,
        )

    def call(
        self,
        endpoint: str,
        body: Any = None,
        *,
        mode: AuthMode = "token",
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call whose reply must be HTTP 200; returns the envelope."""
        response = self.post(endpoint, body, mode=mode, headers=headers)
        response.raise_for_status()
        envelope: dict[str, Any] = response.json()
        return envelope

    def data(
        self,
        endpoint: str,
        body: Any = None,
        *,
        mode: AuthMode = "token",
    ) -> dict[str, Any]:
        """One call that must succeed (HTTP 200, code 0); returns the envelope's data."""
        envelope = self.call(endpoint, body, mode=mode)
        if envelope["code"] != 0:
            raise RuntimeError(f"{endpoint} answered {envelope}")
        data: dict[str, Any] = envelope["data"]
        return data
