"""kopf admission: the validating webhook for PhoneBindings and the server that carries it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf

from phonefleet_operator import constants as c
from phonefleet_operator.services.certificates import ServingFiles
from phonefleet_operator.services.runtime import Runtime
from phonefleet_operator.settings import OperatorSettings

__all__ = ["WebhookServer", "no_webhook_server", "validate_binding", "webhook_server"]


@kopf.on.validate(
    c.GROUP,
    c.VERSION,
    c.BINDING_PLURAL,
    id="validate-phonebinding",
    operations=["CREATE", "UPDATE"],
    # Ignore: a webhook that is down must not block every apply; the claim stays the guarantee.
    ignore_failures=True,
    side_effects=False,
)
async def validate_binding(
    spec: kopf.Spec, name: str, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Refuse a binding whose phone another binding holds, or whose spec breaks an invariant."""
    runtime: Runtime = memo.runtime
    if not runtime.scope.serves(namespace or ""):
        return  # another account's operator serves that namespace and reviews it
    problems = await runtime.admission.review(namespace or "", name, dict(spec))
    if problems:
        raise kopf.AdmissionError("; ".join(problems), code=422)


class WebhookServer(kopf.WebhookServer):
    """kopf's webhook server, addressed through a Service when the operator runs in a cluster."""

    def __init__(self, *, service: tuple[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._service = service

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        """The client configs kopf writes into the ValidatingWebhookConfiguration."""
        async for config in super().__call__(fn):
            if self._service is None:
                yield config
                continue
            namespace, name = self._service
            yield {
                "caBundle": config.get("caBundle"),
                "service": {"namespace": namespace, "name": name, "port": 443, "path": ""},
            }


async def no_webhook_server(fn: Any) -> AsyncIterator[Any]:
    """The "server" of an operator whose webhook is disabled: it never serves anything.

    kopf refuses to run admission handlers without a server; with this one the handler stays
    registered (module import) and simply is never called.
    """
    await asyncio.Event().wait()
    yield {}  # pragma: no cover - never reached


def webhook_server(settings: OperatorSettings, files: ServingFiles) -> WebhookServer:
    """The server for these settings and certificate files."""
    service = (
        (settings.operator_namespace, settings.webhook_service)
        if settings.webhook_service
        else None
    )
    return WebhookServer(
        addr=settings.webhook_addr,
        port=settings.webhook_port,
        host=settings.webhook_host,
        certfile=str(files.certfile),
        pkeyfile=str(files.pkeyfile),
        cafile=str(files.cafile),
        service=service,
    )
