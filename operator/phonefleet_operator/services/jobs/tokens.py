"""Job tokens: the secret that lets the operator, and only it, call a binding's job endpoint.

One key per operator installation (32 random bytes kept in a Secret of the operator's namespace,
or given as PHONEFLEET_JOBS_TOKEN_KEY); a binding's token is HMAC-SHA256(key, namespace/name/uid).
So the token is stable across operator restarts and ADB re-provisioning, differs per binding
(and per incarnation of a binding), and is never stored anywhere but in the binding's own Secret,
which only its worker pod mounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["KEY_FIELD", "JobTokens", "new_key_data"]

#: The data key of the Secret that keeps the operator's job key.
KEY_FIELD = "key"


def new_key_data() -> dict[str, str]:
    """``stringData`` of a fresh key Secret."""
    return {KEY_FIELD: secrets.token_hex(32)}


class JobTokens:
    """Derives binding tokens from the operator's key, once the key is loaded at start-up."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def ready(self) -> bool:
        """Whether the key is loaded."""
        return self._key is not None

    def load(self, key: bytes) -> None:
        """Use ``key`` from now on."""
        if len(key) < 16:
            raise ValueError("the job token key must have at least 16 bytes")
        self._key = key

    def load_secret_data(self, data: dict[str, str]) -> None:
        """Load the key from a Secret's base64 ``data``."""
        self.load(base64.b64decode(data[KEY_FIELD]))

    def token_for(self, namespace: str, name: str, uid: str) -> str:
        """The job token of one binding; "" while no key is loaded (then no token is written)."""
        if self._key is None:
            return ""
        message = f"{namespace}/{name}/{uid}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
