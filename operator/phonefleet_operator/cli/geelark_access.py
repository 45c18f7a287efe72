"""The Geelark settings and phone inventory of one CLI command, from PHONEFLEET_GEELARK_*."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import click
from pydantic import SecretStr

from phonefleet_operator.geelark import GeelarkClient, PhoneInventory
from phonefleet_operator.settings import (
    GeelarkSettings,
    InvalidSettings,
    geelark_credentials_given,
    load_settings,
)

__all__ = ["MISSING_CREDENTIALS", "load_geelark_settings", "open_inventory"]

MISSING_CREDENTIALS = (
    "no Geelark credentials: set PHONEFLEET_GEELARK_TOKEN, or both PHONEFLEET_GEELARK_APP_ID "
    "and PHONEFLEET_GEELARK_API_KEY (and PHONEFLEET_GEELARK_URL for another endpoint)"
)


def load_geelark_settings() -> GeelarkSettings | None:
    """The settings from the environment; None when no credential variable is set at all.

    Any other invalid setting (a half-set key mode included) is a usage error (exit code 2)
    that names the variable and never its value.
    """
    given = geelark_credentials_given()
    try:
        # Without credentials, the other variables are still checked (with a placeholder).
        settings = load_settings(
            GeelarkSettings, **({} if given else {"token": SecretStr("placeholder")})
        )
    except InvalidSettings as error:
        raise click.UsageError(f"invalid PHONEFLEET_GEELARK_* settings: {error}") from None
    return settings if given else None


@asynccontextmanager
async def open_inventory(settings: GeelarkSettings) -> AsyncIterator[PhoneInventory]:
    """A phone inventory on its own client, closed on exit; its first lookup lists every phone."""
    async with GeelarkClient(settings) as client:
        yield PhoneInventory(client, settings)
