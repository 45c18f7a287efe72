"""The ADB endpoint of one phone: fetched from Geelark by the operator, given to its worker."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr

from ._base import StatusModel

__all__ = ["AdbConnection"]


def _port_to_string(value: object) -> object:
    # Geelark documents the port as a string; accept an integer too rather than fail on a detail.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class AdbConnection(StatusModel):
    """Where and how to reach one phone over ADB; ``repr`` and ``str`` never show the password."""

    model_config = ConfigDict(frozen=True)

    ip: str = Field(min_length=1, description="Address of the phone's ADB endpoint.")
    port: Annotated[str, BeforeValidator(_port_to_string)] = Field(
        min_length=1, description="Port of the phone's ADB endpoint."
    )
    password: SecretStr = Field(description="Password for Geelark's on-device login (glogin).")
    phone_id: str = Field(min_length=1, description="Canonical Geelark id of the phone.")

    @property
    def udid(self) -> str:
        """``ip:port``: the adb serial of the phone, and Appium's ``appium:udid``."""
        return f"{self.ip}:{self.port}"
