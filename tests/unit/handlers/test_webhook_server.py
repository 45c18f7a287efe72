"""The admission server every replica runs: reviews over TLS, and /readyz telling whether it can
answer them as the holder would.

A real HTTPS server on loopback with a certificate from the operator's own CA; the reviews come
from a fake AdmissionService, and the watches' progress from stand-ins of ObjectWatch (the real
watches against a real API server: tests/integration/operator/test_admission_on_every_replica.py).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from phonefleet_operator.services.certificates import CertificateAuthority
from phonefleet_operator.services.replica import Replica
from phonefleet_operator.settings import GeelarkSettings, OperatorSettings
from phonefleet_operator.webhook import AdmissionServer
from phonefleet_testbed.processes import free_port


class HeldPhones:
    """An AdmissionService that refuses every binding for phone ``held``."""

    async def review(self, namespace: str, name: str, spec: dict[str, Any]) -> list[str]:
        if spec.get("phoneId") == "held":
            return [f"phone held is already held by binding {namespace}/owner"]
        return []


@dataclass
class Watch:
    """What admission_ready reads of an ObjectWatch."""

    name: str
    lists: int = 0
    running: bool = True

    def alive(self) -> bool:
        return self.running

    def signal(self) -> None:
        self.running = False

    def join(self, timeout: float) -> bool:
        return not self.running


@dataclass
class Served:
    replica: Replica
    url: str
    session: aiohttp.ClientSession
    tls: ssl.SSLContext

    async def ready(self) -> tuple[int, str]:
        async with self.session.get(f"{self.url}/readyz", ssl=self.tls) as answer:
            return answer.status, await answer.text()

    async def post(self, path: str, body: bytes) -> tuple[int, Any]:
        async with self.session.post(f"{self.url}{path}", data=body, ssl=self.tls) as answer:
            text = await answer.text()
            return answer.status, (json.loads(text) if answer.status == 200 else text)


def review(phone_id: str, annotation: int = 0) -> bytes:
    """A PhoneBinding CREATE review; ``annotation``: the size of a big annotation it carries."""
    metadata: dict[str, Any] = {"name": "intruder"}
    if annotation:
        metadata["annotations"] = {"example.com/blob": "x" * annotation}
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"kind": "PhoneBinding"},
                "namespace": "team-a",
                "name": "intruder",
                "object": {"metadata": metadata, "spec": {"phoneId": phone_id}},
            },
        }
    ).encode()


@pytest.fixture
async def served(tmp_path: Path, kubeconfig: Path) -> AsyncIterator[Served]:
    """A replica's admission server on loopback, its certificate from a fresh CA."""
    port = free_port()
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig),
        webhook_enabled=True,
        webhook_addr="127.0.0.1",
        webhook_port=port,
        webhook_service="",
    )
    replica = Replica.create(settings, GeelarkSettings(url="http://127.0.0.1:9", token="t"))
    replica.admission = HeldPhones()  # type: ignore[assignment]
    files = CertificateAuthority.create(datetime.now(UTC)).issue_serving(
        ["127.0.0.1"], tmp_path, datetime.now(UTC)
    )
    server = AdmissionServer(replica, files)
    await server.start()
    tls = ssl.create_default_context(cafile=str(files.cafile))
    async with aiohttp.ClientSession() as session:
        yield Served(replica, f"https://127.0.0.1:{port}", session, tls)
    await server.stop()
    await replica.close()


async def test_a_binding_for_a_held_phone_is_refused_over_tls(served: Served) -> None:
    """POST /validate-phonebinding: the AdmissionReview answer, refused with 422."""
    status, answer = await served.post("/validate-phonebinding", review("held"))
    assert status == 200
    assert answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["code"] == 422
    assert "already held by binding team-a/owner" in answer["response"]["status"]["message"]
    status, answer = await served.post("/validate-phonebinding", review("free"))
    assert answer["response"]["allowed"] is True


async def test_a_review_as_large_as_the_api_server_may_send_is_reviewed(served: Served) -> None:
    """Past aiohttp's default 1 MiB limit: with failurePolicy Ignore, a review the server did
    not read was admitted unreviewed. An UPDATE carries the object (the API server takes up to
    3 MiB) and the stored one (etcd keeps up to 1.5 MiB)."""
    status, answer = await served.post("/validate-phonebinding", review("held", 4_500_000))
    assert status == 200
    assert answer["response"]["allowed"] is False


async def test_a_body_larger_than_any_review_is_refused_naming_the_limit(served: Served) -> None:
    """It cannot come from the API server (nor could its object be stored)."""
    status, text = await served.post("/validate-phonebinding", review("held", 9 << 20))
    assert status == 413
    assert "Maximum request body size 8388608 exceeded" in text


async def test_an_unknown_path_is_404_and_a_body_that_is_no_review_is_400(
    served: Served,
) -> None:
    """Neither reaches a review."""
    assert (await served.post("/validate-pods", review("held")))[0] == 404
    assert (await served.post("/validate-phonebinding", b"{not json"))[0] == 400
    assert (await served.post("/validate-phonebinding", b'{"kind": "Pod"}'))[0] == 400


async def test_readyz_is_503_until_both_admission_watches_listed_and_while_one_has_ended(
    served: Served,
) -> None:
    """Ready = can answer as the holder would: both views listed once, both watches running."""
    status, text = await served.ready()
    assert (status, "have not started" in text) == (503, True)
    pools, namespaces = Watch("PhonePools for admission"), Watch("namespaces for admission")
    served.replica._watches = [pools, namespaces]  # type: ignore[list-item]
    status, text = await served.ready()
    assert (status, "PhonePools for admission has not listed yet" in text) == (503, True)
    pools.lists = namespaces.lists = 1
    assert await served.ready() == (200, "ready\n")
    namespaces.running = False
    status, text = await served.ready()
    assert (status, "namespaces for admission has ended" in text) == (503, True)
